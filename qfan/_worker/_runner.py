"""Running a worker's handler on one message and settling the outcome, wherever the message came from.

The engine (long-running workers) and the Lambda adapter both run messages through a :class:`HandlerRunner`:
poison never reaches the handler, middleware and ``around_handler`` hooks wrap every call, and what becomes
of the message is :func:`~qfan._worker._settle.decide`'s, carried out by the :class:`SettleExecutor`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

import anyio

from .._exceptions import HandlerOutcome, MessageError
from .._pipeline._hooks import HookSet
from .._pipeline._message import Message
from .._resources._queue import Queue
from ._executor import SettleExecutor
from ._handler import Handler
from ._settle import SettlePolicy, decide
from ._worker import Middleware, Worker

logger = logging.getLogger("qfan")


class HandlerRunner:
    """Calls one worker's handler and settles each message.

    Args:
        worker: the worker (handler, backoff, attempt limit, stats).
        queues: the worker's queues by name (each message names the queue it came from).
        executor: carries out the settle decisions.
        hooks: the app's pipeline hooks (``around_handler``, ``after_settle``).
        middleware: the app's middleware, run inside the hooks.
        abandon_on_cancel: a cancelled sync handler's call returns at once, its thread left to finish
            (Lambda's deadline), instead of waiting for the thread (a worker's drain).
    """

    def __init__(
        self,
        worker: Worker,
        queues: Mapping[str, Queue[Any]],
        executor: SettleExecutor,
        hooks: HookSet,
        middleware: Sequence[Middleware] = (),
        *,
        abandon_on_cancel: bool = False,
    ) -> None:
        self.worker = worker
        self._abandon = abandon_on_cancel
        self.stats = worker.stats
        self.executor = executor
        self._hooks = hooks
        self._middleware = (*around(hooks, middleware), *worker.middleware)  # the worker's own innermost
        self._policies = {
            name: SettlePolicy(worker.backoff, worker.attempts_limit, queue.dead_letter is not None)
            for name, queue in queues.items()
        }
        # Sync handlers' threads: a limiter of their own (a task holding a token cannot borrow another).
        self.threads = anyio.CapacityLimiter(worker.concurrency)

    async def run(self, message: Message[Any]) -> bool:
        """Run the handler for one message and settle it; True when it was deleted as handled."""
        try:
            _ = message.body  # poison never reaches the handler, and never loops
        except MessageError as exc:
            return await self.settle(message, exc, poison=True)
        started = time.monotonic()
        outcome: BaseException | None = None
        try:
            await self._call(message)
        except Exception as exc:
            outcome = exc
        finally:
            self.stats.timed(time.monotonic() - started)
        return await self.settle(message, outcome)

    async def run_batch(
        self, messages: list[Message[Any]], stopped: Callable[[Message[Any]], Awaitable[None]]
    ) -> None:
        """Run a batch handler on ``messages`` (poison settled without it) and settle each message by what it
        reported failed. On a FIFO queue the messages after a failed one of the same group are not settled
        but handed to ``stopped`` (the engine releases them; on Lambda they are reported)."""
        good: list[Message[Any]] = []
        for message in messages:
            try:
                _ = self.worker.handler.takes_poison or message.body  # poison-taking handlers judge it
                good.append(message)
            except MessageError as exc:
                await self.settle(message, exc, poison=True)
        if not good:
            return
        started = time.monotonic()
        failure: Exception | None = None
        try:
            call: Callable[[], Awaitable[Any]] = partial(
                self.worker.handler, good, self.threads, abandon_on_cancel=self._abandon
            )
            for hook in reversed(self._hooks.around_batch):  # outermost first
                call = partial(hook, good, call)
            reported = await call()
            failed_ids = {m if isinstance(m, str) else m.message_id for m in (reported or ())}
        except Exception as exc:
            failure, failed_ids = exc, {m.message_id for m in good}
        finally:
            self.stats.timed(time.monotonic() - started)
        stopped_groups: set[str] = set()
        fifo = self.worker.queue.fifo
        for message in good:
            if fifo and message.group_id in stopped_groups:
                await stopped(message)
            elif message.message_id in failed_ids:
                await self.settle(message, failure or RuntimeError("reported failed by the batch handler"))
                if message.group_id is not None:
                    stopped_groups.add(message.group_id)
            else:
                await self.settle(message, None)

    async def _call(self, message: Message[Any]) -> None:
        await call_handler(
            self.worker.handler, message, self.threads, self._middleware, abandon=self._abandon
        )

    async def settle(
        self, message: Message[Any], outcome: BaseException | None, *, poison: bool = False
    ) -> bool:
        """Decide what becomes of a message (:func:`~qfan._settle.decide`) and do it; True when deleted."""
        if outcome is not None and not poison and not isinstance(outcome, HandlerOutcome):
            logger.warning(
                "worker %s: message %s failed (attempt %d): %s: %s",
                self.worker.name,
                message.message_id,
                message.receive_count,
                type(outcome).__name__,
                outcome,
                exc_info=outcome,
            )
        policy = self._policies[message.queue]
        action = decide(outcome, message.receive_count, policy, poison=poison, settled=message.settled)
        if self._hooks:
            self._hooks.after_settle(message, action)
        return await self.executor.perform(message, action)


def around(hooks: HookSet, middleware: Sequence[Middleware]) -> tuple[Middleware, ...]:
    """What wraps every handler call, outermost first: the hooks' ``around_handler``, then middleware."""
    return (*hooks.around, *middleware)


async def call_handler(
    handler: Handler,
    message: Message[Any],
    threads: anyio.CapacityLimiter,
    wrappers: Sequence[Middleware],
    *,
    abandon: bool = False,
) -> None:
    """Call ``handler`` on one message inside ``wrappers`` (see :func:`around`)."""
    if not wrappers:
        await handler(message, threads, abandon_on_cancel=abandon)
        return
    call: Callable[[], Awaitable[Any]] = partial(handler, message, threads, abandon_on_cancel=abandon)
    for wrapper in reversed(wrappers):
        call = partial(wrapper, message, call)
    await call()
