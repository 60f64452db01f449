"""The worker engine: receive, hold, run handlers, settle every message, shut down without losing any.

Flow for one worker::

    receivers (long polls) --> held messages, ready per group --> runners --> handler --> settle

- ``concurrency`` long-lived runners take turns from the :class:`~qfan._scheduler.Scheduler` (no task per
  message): each turn runs one ready unit (a group's next message, or a batch) and settles it.
- At most ``concurrency + prefetch`` messages are held at once (a semaphore of slots, one per message,
  released only when the message is settled), and each receive asks for no more than the free slots.
- A priority queue's levels are received separately (each level with its own slots, and one receiver
  only while the level's last receive came back short); which held message runs next is the
  :class:`~qfan._scheduler.Scheduler`'s decision: weighted shares or strict order. Strict mode does not
  even receive a level while a higher one has work, and gives back what such a receive brought.
- Every held message is tracked by the visibility heartbeat until it is settled, so waiting and long-running
  messages do not reappear on the queue.
- Messages are processed per *group*: on a FIFO queue a group is the message group (one message at a time,
  in order; a failure releases the group's later messages); elsewhere every message is its own group.
- Settling: success or ``Ack`` -> delete; ``Retry`` or an exception -> visible again after a backoff;
  ``Reject``, poison (undecodable) or too many attempts -> copy to the dead-letter queue with the reason,
  then delete. Nothing is deleted before its outcome is final.
- Stopping: receivers stop, held messages that have not started are released at once (visibility 0),
  running handlers get ``drain_timeout`` seconds to finish; what is still running then is cancelled and
  its message released.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import anyio.abc

from .._exceptions import HandlerOutcome, MessageError, QfanError
from .._pipeline._hooks import HookSet
from .._pipeline._message import Message
from .._resources._queue import Queue
from .._wire._codec import Decoder
from ._executor import SettleExecutor
from ._heartbeat import VisibilityHeartbeat
from ._scheduler import Scheduler, take_free
from ._settle import SettlePolicy, decide
from ._worker import Middleware, Worker

logger = logging.getLogger("qfan")

_GATHER_SLOTS = 0.003
_FIRST_RECEIVE_GRACE = 0.5  # the longest a weighted priority worker waits for every level's first receive
_IDLE_BACKOFF = 2.0  # the longest pause between short polls (receive_wait=0) of an empty priority level


@dataclass(eq=False)
class _Level:
    """One queue the worker receives from: a priority level, or the worker's only queue."""

    index: int
    name: str
    queue: Queue[Any]
    slots: anyio.Semaphore
    gathering: anyio.Lock = field(default_factory=anyio.Lock)


class WorkerEngine:
    """Runs one :class:`Worker` until told to stop."""

    def __init__(
        self, worker: Worker, middleware: Sequence[Middleware] = (), hooks: HookSet | None = None
    ) -> None:
        self.worker = worker
        self.stats = worker.stats
        self.fifo = worker.queue.fifo
        self._hooks = hooks if hooks is not None else HookSet()
        self._middleware = (*self._hooks.around, *middleware)
        self._decoder: Decoder[Any] = Decoder(worker.handler.body_type)
        capacity = worker.concurrency + worker.prefetch
        source = worker.queue.consumed_levels()
        queues = source.queues
        self._levels = [
            _Level(i, name, queue, anyio.Semaphore(capacity or 1))
            for i, (name, queue) in enumerate(queues.items())
        ]
        self._by_queue = {level.queue.name: level for level in self._levels}
        self._executor = SettleExecutor(
            worker, {level.queue.name: level.queue for level in self._levels}, self._forget
        )
        self._settle_policies = {
            level.queue.name: SettlePolicy(
                worker.backoff, worker.attempts_limit, level.queue.dead_letter is not None
            )
            for level in self._levels
        }
        self._priority = source.prioritised
        self._scheduler = Scheduler(
            worker.concurrency, list(source.weights), source.mode, dict(source.reserved)
        )
        # Sync handlers' threads: a limiter of their own (a task holding a token cannot borrow another).
        self._threads = anyio.CapacityLimiter(worker.concurrency)
        self._per_receive = worker.batch_size or 10
        self._receivers = 1 if self.fifo else max(1, min(10, math.ceil(capacity / self._per_receive)))
        self._held: set[Message[Any]] = set()
        self._started: set[Message[Any]] = set()
        self._groups: dict[tuple[int, str], deque[Message[Any]]] = {}
        # Units ready to run, per level: a group's key (its next message), or a batch.
        self._ready: list[deque[tuple[int, str] | list[Message[Any]]]] = [deque() for _ in self._levels]
        self._stopping = False
        self._active = 0
        self._idle = anyio.Event()
        self._visibility = 30
        self._heartbeat = VisibilityHeartbeat(30, worker.max_extension)
        self._heard: set[int] = set()  # levels whose first receive came back; all of them: _all_heard
        self._all_heard = anyio.Event()

    @property
    def ready(self) -> bool:
        """Every queue of the worker is declared (or resolved) and its first receive succeeded."""
        return self._all_heard.is_set()

    async def run(self, stop: anyio.Event, drain_timeout: float) -> None:
        """Process messages until ``stop`` is set, then drain (see the module docstring)."""
        infos = [await level.queue.declare() for level in self._levels]
        self._visibility = self.worker.visibility_timeout or max(
            int(info.attributes.get("VisibilityTimeout", 30)) for info in infos
        )
        self._heartbeat = VisibilityHeartbeat(self._visibility, self.worker.max_extension)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._heartbeat.run)
            async with anyio.create_task_group() as work:
                work.start_soon(self._start_runners, work)
                async with anyio.create_task_group() as intake:
                    for level in self._levels:
                        for index in range(self._receivers):
                            intake.start_soon(self._receive_loop, level, index)
                    await stop.wait()
                    intake.cancel_scope.cancel()
                self._stopping = True
                await self._release_unstarted()
                with anyio.move_on_after(drain_timeout):
                    while self._active:
                        self._idle = anyio.Event()
                        await self._idle.wait()
                work.cancel_scope.cancel()
            outer.cancel_scope.cancel()
        logger.info("worker %s stopped: %s", self.worker.name, self.stats.summary())

    async def _start_runners(self, work: anyio.abc.TaskGroup) -> None:
        """Start the runners; with weighted levels, once every level's first receive is in (bounded: an
        empty level long-polls), so the level that answers first does not take every slot at start-up."""
        if len(self._levels) > 1 and self._scheduler.mode == "weighted":
            with anyio.move_on_after(_FIRST_RECEIVE_GRACE):
                await self._all_heard.wait()
        for _ in range(self.worker.concurrency):
            work.start_soon(self._runner)

    # -- intake ---------------------------------------------------------------------------------------

    async def _receive_loop(self, level: _Level, index: int) -> None:
        failures = empty = 0
        scheduler = self._scheduler
        wait = self.worker.receive_wait
        wait = level.queue.options.wait_seconds if wait is None else wait
        while True:
            # Strict mode: not while a higher level has work. Priority levels: extra receivers only while
            # the level is busy, so an empty level costs one long poll per receive_wait.
            while not scheduler.may_receive(level.index) or (
                index and self._priority and scheduler.drained(level.index)
            ):
                await scheduler.wait_changed()
            # Gather free slots for a moment before receiving: with fast handlers slots free up one by
            # one, and a receive per freed slot would multiply the calls (each costs far more than waiting).
            # One receiver gathers at a time, so that receivers fill their asks in turn, not all by halves.
            async with level.gathering:
                await level.slots.acquire()
                want = 1 + take_free(level.slots, self._per_receive - 1)
                if want < self._per_receive:
                    with anyio.move_on_after(_GATHER_SLOTS):
                        while want < self._per_receive:
                            await level.slots.acquire()
                            want += 1 + take_free(level.slots, self._per_receive - want - 1)
            try:
                messages = await level.queue.receive_with(self._decoder, want, wait, self._visibility)
                failures = 0
            except QfanError as exc:
                for _ in range(want):
                    level.slots.release()
                failures += 1
                logger.warning("worker %s: receive failed (%s), backing off", self.worker.name, exc)
                await anyio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            for _ in range(want - len(messages)):
                level.slots.release()
            for message in messages:
                self._hold(message)
            scheduler.received(level.index, short=len(messages) < want)
            self._heard.add(level.index)
            if len(self._heard) == len(self._levels):
                self._all_heard.set()
            if not scheduler.may_receive(level.index):  # a higher level got work meanwhile: give back
                await self._executor.release(messages)
                continue
            empty = 0 if messages else empty + 1
            if empty and self._priority and wait == 0:  # short polls of an empty level: back off
                await anyio.sleep(min(_IDLE_BACKOFF, 0.05 * 2 ** min(empty, 6)))
            if self.worker.batch_size is not None:
                if messages:
                    self._ready[level.index].append(messages)
                    self._scheduler.ready(level.index)
                continue
            for message in messages:
                group = message.group_id if self.fifo and message.group_id else message.message_id
                key = (level.index, group)
                waiting = self._groups.get(key)
                if waiting is None:
                    self._groups[key] = deque([message])
                    self._ready[level.index].append(key)
                    self._scheduler.ready(level.index)
                else:
                    waiting.append(message)

    def _hold(self, message: Message[Any]) -> None:
        self._held.add(message)
        self._scheduler.held(self._by_queue[message.queue].index, 1)
        self._heartbeat.track(message)
        self.stats.received += 1
        self.stats.in_flight += 1

    def _start(self, message: Message[Any]) -> None:
        self._started.add(message)
        level = self._by_queue[message.queue]
        self._scheduler.held(level.index, -1)
        if self._priority:
            by_level = self.stats.started_by_level
            by_level[level.name] = by_level.get(level.name, 0) + 1

    def _forget(self, message: Message[Any]) -> None:
        if message in self._held:
            self._held.discard(message)
            level = self._by_queue[message.queue]
            if message in self._started:
                self._started.discard(message)
            else:
                self._scheduler.held(level.index, -1)
            self._heartbeat.untrack(message)
            level.slots.release()
            self.stats.in_flight -= 1

    # -- running --------------------------------------------------------------------------------------

    async def _runner(self) -> None:
        """One of ``concurrency`` long-lived runners: take a turn, run one unit of its level, repeat."""
        scheduler = self._scheduler
        while True:
            level, slot = await scheduler.take()
            unit = self._ready[level].popleft()
            self._active += 1
            try:
                if isinstance(unit, list):
                    await self._run_batch(unit)
                else:
                    await self._run_next(level, unit)
            finally:
                scheduler.done(slot)
                self._active -= 1
                if not self._active:
                    self._idle.set()

    async def _run_next(self, level: int, key: tuple[int, str]) -> None:
        """Run the next message of a group (every message is its own group outside FIFO queues)."""
        waiting = self._groups[key]
        if self._stopping or not waiting:  # stopping: its messages were given back
            self._groups.pop(key, None)
            return
        message = waiting.popleft()
        succeeded = await self._process(message)
        if waiting and not succeeded and self.fifo:
            # Later messages of this group must not overtake the failed one.
            released = list(waiting)
            waiting.clear()
            await self._executor.release(released)
        if waiting:  # its next message (maybe one that arrived meanwhile) waits for a turn of its own
            self._ready[level].append(key)
            self._scheduler.ready(level)
        else:
            del self._groups[key]

    async def _process(self, message: Message[Any]) -> bool:
        """Run the handler for one message and settle it; True when it was deleted as handled."""
        self._start(message)
        try:
            try:
                _ = message.body  # poison never reaches the handler, and never loops
            except MessageError as exc:
                return await self._settle(message, exc, poison=True)
            started = time.monotonic()
            outcome: BaseException | None = None
            try:
                await self._call(message)
            except Exception as exc:
                outcome = exc
            finally:
                self.stats.timed(time.monotonic() - started)
            return await self._settle(message, outcome)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._executor.release([message])  # cancelled mid-way (drain timeout): give it back
            raise
        finally:
            self._forget(message)

    async def _call(self, message: Message[Any]) -> None:
        call: Callable[[], Awaitable[Any]] = partial(self.worker.handler, message, self._threads)
        for middleware in reversed(self._middleware):
            call = partial(middleware, message, call)
        await call()

    async def _call_batch(self, messages: list[Message[Any]]) -> Any:
        call: Callable[[], Awaitable[Any]] = partial(self.worker.handler, messages, self._threads)
        for hook in reversed(self._hooks.around_batch):
            call = partial(hook, messages, call)
        return await call()

    async def _run_batch(self, messages: list[Message[Any]]) -> None:
        try:
            if self._stopping:  # its messages were given back
                return
            for message in messages:
                self._start(message)
            try:
                await self._process_batch(messages)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._executor.release([m for m in messages if m in self._held and not m.settled])
                raise
        finally:
            for message in messages:
                self._forget(message)

    async def _process_batch(self, messages: list[Message[Any]]) -> None:
        good: list[Message[Any]] = []
        for message in messages:
            try:
                _ = message.body
                good.append(message)
            except MessageError as exc:
                await self._settle(message, exc, poison=True)
        if not good:
            return
        started = time.monotonic()
        failure: Exception | None = None
        try:
            reported = await self._call_batch(good)
            failed_ids = {m if isinstance(m, str) else m.message_id for m in (reported or ())}
        except Exception as exc:
            failure, failed_ids = exc, {m.message_id for m in good}
        finally:
            self.stats.timed(time.monotonic() - started)
        stopped_groups: set[str] = set()
        for message in good:
            if self.fifo and message.group_id in stopped_groups:
                await self._executor.release([message])
            elif message.message_id in failed_ids:
                await self._settle(message, failure or RuntimeError("reported failed by the batch handler"))
                if message.group_id is not None:
                    stopped_groups.add(message.group_id)
            else:
                await self._settle(message, None)

    # -- settling -------------------------------------------------------------------------------------

    async def _settle(
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
        policy = self._settle_policies[message.queue]
        action = decide(outcome, message.receive_count, policy, poison=poison, settled=message.settled)
        if self._hooks:
            self._hooks.after_settle(message, action)
        return await self._executor.perform(message, action)

    async def _release_unstarted(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._executor.release([m for m in self._held if m not in self._started])
