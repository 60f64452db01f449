"""The synchronous ``handler(event, context)`` Lambda's Python runtime calls, created once per cold start.

It owns one event loop for its whole life, on a thread of its own (anyio's blocking portal: the sync world's
one door into async code): every invocation runs on that loop, so warm invocations reuse the app's open
connection and nothing of the loop leaks between them. The app is opened by a long-lived task the first time
something needs AWS (a dead-letter copy, a backoff, an offloaded payload); a batch whose messages are all
handled needs no connection at all (Lambda deletes them), which keeps cold starts cheap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from .._exceptions import ConfigError
from .._pipeline._hooks import HookSet
from .._resources._queue import Queue
from .._worker._worker import Middleware, Worker
from ._records import SNS_SOURCE, record_source
from ._sns import TopicHandler, handle_sns_event
from ._sqs import QueueRoute, handle_sqs_event

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

logger = logging.getLogger("qfan")


class LambdaContext(Protocol):
    """What qfan reads from Lambda's context object."""

    def get_remaining_time_in_millis(self) -> int: ...


class _AppOwner:
    """Opens the app on demand from a task that lives as long as the loop, and closes it at the end."""

    def __init__(self, app: AbstractAsyncContextManager[Any]) -> None:
        self._app = app
        self._wanted = anyio.Event()
        self._answered = anyio.Event()
        self._stop = anyio.Event()
        self._lock = anyio.Lock()
        self._error: Exception | None = None
        self.is_open = False
        self.stopping = False

    async def serve(self) -> None:
        """Open the app whenever asked, keep it open until :meth:`close`; a failed open can be retried."""
        while not self.stopping:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            if self.stopping:
                return
            try:
                async with self._app:
                    self.is_open = True
                    self._answered.set()
                    await self._stop.wait()
            except Exception as exc:
                self._error = exc
            finally:
                self.is_open = False
                self._answered.set()

    async def open(self) -> None:
        """Return once the app is open (raising what opening it raised)."""
        if self.is_open:
            return
        async with self._lock:
            if self.is_open:
                return
            self._error = None
            self._answered = anyio.Event()
            self._wanted.set()
            await self._answered.wait()
            if self._error is not None:
                raise self._error

    async def close(self) -> None:
        self.stopping = True
        self._stop.set()
        self._wanted.set()


class LambdaHandler:
    """``handler(event, context)`` for Lambda's Python runtime (see :meth:`qfan.App.lambda_handler`).

    SQS events are answered with a partial batch response (``{"batchItemFailures": [...]}``: enable
    ``ReportBatchItemFailures`` on the event source mapping); SNS events return ``None`` or raise.

    Args:
        app: the app (opened by the handler when first needed, and kept open).
        workers: the app's workers; SQS records are routed to them by their queue's name.
        topic_handlers: SNS records are routed to them by topic name.
        hooks, middleware: the app's, around every handler call.
        safety_margin: seconds before Lambda's deadline at which running handlers are given up.
    """

    def __init__(
        self,
        app: AbstractAsyncContextManager[Any],
        workers: Mapping[str, Worker],
        topic_handlers: Mapping[str, TopicHandler],
        hooks: HookSet,
        middleware: Sequence[Middleware],
        *,
        safety_margin: float = 1.0,
    ) -> None:
        if not 0 <= safety_margin <= 60:
            raise ConfigError(f"safety_margin must be 0..60 seconds, got {safety_margin!r}")
        self.safety_margin = safety_margin
        self._app = app
        self._queues: dict[str, tuple[Worker, Queue[Any]]] = {}
        for worker in workers.values():
            for queue in worker.queue.consumed_levels().queues.values():
                if queue.name in self._queues:
                    raise ConfigError(f"queue {queue.name!r} has two workers: Lambda could not choose")
                self._queues[queue.name] = (worker, queue)
        self._topics = {handler.topic.name: handler for handler in topic_handlers.values()}
        self._hooks = hooks
        self._middleware = tuple(middleware)
        self._routes: dict[str, QueueRoute] | None = None
        self._owner: _AppOwner | None = None
        self._portal: BlockingPortal | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Mapping[str, Any], context: LambdaContext | None = None) -> Any:
        """Handle one invocation (from any thread; the runtime calls it from its main thread)."""
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            raise ConfigError("not an SQS or SNS event: it has no Records list")
        seconds_left = None if context is None else context.get_remaining_time_in_millis() / 1000
        return self._start().call(self._invoke, records, seconds_left)

    def _start(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                from anyio.from_thread import start_blocking_portal  # not needed to import qfan

                self._portal_cm = start_blocking_portal()
                self._portal = self._portal_cm.__enter__()
                self._owner = self._portal.call(_AppOwner, self._app)
                self._portal.start_task_soon(self._owner.serve)
            return self._portal

    async def _invoke(self, records: list[Mapping[str, Any]], seconds_left: float | None) -> Any:
        assert self._owner is not None
        if records and all(record_source(r) == SNS_SOURCE for r in records):
            await handle_sns_event(records, self._topics, self._hooks, self._middleware, self._owner.open)
            return None
        if self._routes is None:  # on the loop: the routes hold anyio primitives
            self._routes = {
                name: QueueRoute(worker, queue, self._hooks, self._middleware, self._owner.open)
                for name, (worker, queue) in self._queues.items()
            }
        budget = float("inf") if seconds_left is None else seconds_left - self.safety_margin
        failed = await handle_sqs_event(records, self._routes, budget)
        if failed:
            logger.info("lambda: %d of %d record(s) reported failed", len(failed), len(records))
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    def close(self) -> None:
        """Close the app and stop the handler's loop (a warm Lambda never needs this; tests and tools do).

        The handler can be called again afterwards: it starts a new loop.
        """
        with self._lock:
            portal, cm, owner = self._portal, self._portal_cm, self._owner
            self._portal = self._portal_cm = self._owner = None
            self._routes = None
        if portal is None or cm is None or owner is None:
            return
        try:
            portal.call(owner.close)
        finally:
            cm.__exit__(None, None, None)
