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
  then delete. Nothing is deleted before its outcome is final. On a standard queue (not a priority queue) a
  runner does not wait for the delete: it is queued for the next batch and the message's slot is free at
  once, while the heartbeat keeps the message until the delete is acknowledged
  (:class:`~._executor.PendingAcks`).
- Stopping: receivers stop, held messages that have not started are released at once (visibility 0),
  running handlers get ``drain_timeout`` seconds to finish; what is still running then is cancelled and
  its message released. A receive still out is not cut off (the server would hand what arrives to nobody):
  it finishes in the app's background and gives back what it brings at once (:mod:`._intake`).
- Strict priority levels above the lowest are short-polled while they have backlog, so a level's end is
  seen at once (not after a full long poll) and the next level starts; every level's first receive is a
  short poll too, so the worker is :attr:`~WorkerEngine.ready` at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
import anyio.abc

from .._exceptions import QfanError
from .._pipeline._hooks import HookSet
from .._pipeline._loop import asyncio_loop
from .._pipeline._message import Message
from .._wire._codec import Decoder
from ._executor import PendingAcks, SettleExecutor
from ._heartbeat import VisibilityHeartbeat
from ._intake import Activity, Level, ReceiveCalls, gather_slots
from ._runner import HandlerRunner
from ._scheduler import Scheduler
from ._worker import Middleware, Worker

logger = logging.getLogger("qfan")

_GATHER_SLOTS = 0.003
_FIRST_RECEIVE_GRACE = 0.5  # the longest a weighted priority worker waits for every level's first receive
_IDLE_BACKOFF = 2.0  # the longest pause between short polls (receive_wait=0) of an empty priority level
_FORCED_DELETE_GRACE = 2.0  # the longest a forced stop waits for deletes already queued


class WorkerEngine:
    """Runs one :class:`Worker` until told to stop."""

    def __init__(
        self, worker: Worker, middleware: Sequence[Middleware] = (), hooks: HookSet | None = None
    ) -> None:
        self.worker = worker
        self.stats = worker.stats
        self.fifo = worker.queue.fifo
        self._decoder: Decoder[Any] = Decoder(worker.handler.body_type)
        capacity = worker.concurrency + worker.prefetch
        source = worker.queue.consumed_levels()
        queues = source.queues
        self._levels = [
            Level(i, name, queue, anyio.Semaphore(capacity or 1))
            for i, (name, queue) in enumerate(queues.items())
        ]
        self._by_queue = {level.queue.name: level for level in self._levels}
        queues_by_name = {level.queue.name: level.queue for level in self._levels}
        # Pending deletes: a batch lingers before it goes, so at full speed several times what the worker
        # holds are on their way; the bound only matters when deletes slow down.
        # Not on FIFO queues (order), nor for priority levels: their shares are chosen among the messages
        # held, and runners freed before their deletes return can outrun receives, leaving each level to run
        # what arrives instead of its share.
        queued_deletes = not self.fifo and not source.prioritised
        self._acks = PendingAcks(worker, self._deleted, 4 * (capacity or 1)) if queued_deletes else None
        self._executor = SettleExecutor(worker, queues_by_name, self._forget)
        self._handler = HandlerRunner(
            worker, queues_by_name, self._executor, hooks if hooks is not None else HookSet(), middleware
        )
        self._priority = source.prioritised
        self._scheduler = Scheduler(
            worker.concurrency, list(source.weights), source.mode, dict(source.reserved)
        )
        self._per_receive = worker.batch_size or 10
        self._receivers = 1 if self.fifo else max(1, min(10, math.ceil(capacity / self._per_receive)))
        self._held: set[Message[Any]] = set()
        self._started: set[Message[Any]] = set()
        self._groups: dict[tuple[int, str], deque[Message[Any]]] = {}
        # Units ready to run, per level: a message (outside FIFO queues every message is its own group), a
        # FIFO group's key (its next message), or a batch.
        self._ready: list[deque[Message[Any] | tuple[int, str] | list[Message[Any]]]] = [
            deque() for _ in self._levels
        ]
        self._stopping = False
        self._active = 0
        self._idle = anyio.Event()
        self._visibility = 30
        self._heartbeat = VisibilityHeartbeat(30, worker.max_extension)
        self._heard: set[int] = set()  # levels whose first receive came back; all of them: _all_heard
        self._all_heard = anyio.Event()
        self._calls = ReceiveCalls(None)
        self.activity = Activity()
        self.longest_poll = 20  # seconds; a batch run (exit when idle) asks for shorter long polls

    @property
    def ready(self) -> bool:
        """Whether every queue of the worker is declared and its first receive came back."""
        return self._all_heard.is_set()

    async def run(
        self, stop: anyio.Event, drain_timeout: float, receives: ReceiveCalls | None = None
    ) -> None:
        """Process messages until ``stop`` is set, then drain (see the module docstring).

        ``receives``: where receives run (the app's); by default in the worker's tasks.
        """
        self._calls = receives or ReceiveCalls(None)
        infos = [await level.queue.declare() for level in self._levels]
        self._visibility = self.worker.visibility_timeout or max(
            int(info.attributes.get("VisibilityTimeout", 30)) for info in infos
        )
        self._heartbeat = VisibilityHeartbeat(self._visibility, self.worker.max_extension)
        self._executor.acks = self._acks if asyncio_loop() is not None else None
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._heartbeat.run)
            try:
                await self._work(stop, drain_timeout)
            except BaseException:  # forced (cancelled): still, the app must not close under deletes going out
                await self._finish_deletes(min(drain_timeout, _FORCED_DELETE_GRACE))
                raise
            await self._finish_deletes(drain_timeout)
            outer.cancel_scope.cancel()
        logger.info("worker %s stopped: %s", self.worker.name, self.stats.summary())

    async def _work(self, stop: anyio.Event, drain_timeout: float) -> None:
        """Receive and run until ``stop``; then give back what has not started, and drain what runs."""
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

    async def _finish_deletes(self, limit: float) -> None:
        """Wait (at most ``limit`` seconds, even when cancelled) for the deletes still going out; the
        heartbeat keeps their messages meanwhile (a message whose delete is not done comes back later)."""
        if self._acks is None or not self._acks.messages:
            return
        with anyio.move_on_after(limit, shield=True):
            await self._acks.wait()
        if self._acks.messages:
            logger.warning(
                "worker %s: %d delete(s) still pending at the stop: those messages will be delivered again",
                self.worker.name,
                len(self._acks.messages),
            )

    async def _start_runners(self, work: anyio.abc.TaskGroup) -> None:
        """Start the runners; with weighted levels, once every level's first receive is in (bounded: an
        empty level long-polls), so the level that answers first does not take every slot at start-up."""
        if len(self._levels) > 1 and self._scheduler.mode == "weighted":
            with anyio.move_on_after(_FIRST_RECEIVE_GRACE):
                await self._all_heard.wait()
        for _ in range(self.worker.concurrency):
            work.start_soon(self._runner)

    # -- intake ---------------------------------------------------------------------------------------

    async def _receive_loop(self, level: Level, index: int) -> None:
        failures = empty = 0
        scheduler = self._scheduler
        configured = self.worker.receive_wait
        configured = level.queue.options.wait_seconds if configured is None else configured
        configured = min(self.longest_poll, configured)
        gated = scheduler.mode == "strict" and level.index < len(self._levels) - 1
        while True:
            await self.worker.admit()  # flow control: an open circuit breaker stops receiving
            # Strict mode: not while a higher level has work. Priority levels: extra receivers only while
            # the level is busy, so an empty level costs one long poll per receive_wait.
            while not scheduler.may_receive(level.index) or (
                index and self._priority and scheduler.drained(level.index)
            ):
                await scheduler.wait_changed()
            # Gather free slots for a moment (a receive per freed slot would multiply the calls), one
            # receiver at a time, so that receivers fill their asks in turn, not all by halves.
            async with level.gathering:
                want = await gather_slots(level.slots, self._per_receive, _GATHER_SLOTS)
            # A first receive, and a gating strict level with backlog, short-poll: readiness is known at
            # once, and a level's end is seen at once so the next level need not wait a long poll.
            first = level.index not in self._heard
            wait = 0 if first or (gated and not scheduler.drained(level.index)) else configured
            try:
                fetch = partial(level.queue.receive_with, self._decoder, want, wait, self._visibility)
                messages = await self._calls.call(fetch, self._executor.release)
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
            if len(self._heard) == len(self._levels) and not self._all_heard.is_set():
                self.activity.ready_at = time.monotonic()
                self._all_heard.set()
            if not scheduler.may_receive(level.index):  # a higher level got work meanwhile: give back
                await self._executor.release(messages)
                continue
            empty = 0 if messages else empty + 1
            if empty and self._priority and configured == 0:  # short polls of an empty level: back off
                await anyio.sleep(min(_IDLE_BACKOFF, 0.05 * 2 ** min(empty, 6)))
            self._queue_ready(level, messages)

    def _queue_ready(self, level: Level, messages: list[Message[Any]]) -> None:
        """Make received messages ready to run: as one batch, or each as (the next of) its group."""
        if self.worker.batch_size is not None:
            if messages:
                self._ready[level.index].append(messages)
                self._scheduler.ready(level.index)
            return
        ready, scheduler = self._ready[level.index], self._scheduler
        if not self.fifo:
            for message in messages:
                ready.append(message)
                scheduler.ready(level.index)
            return
        for message in messages:
            group = message.group_id or message.message_id
            key = (level.index, group)
            waiting = self._groups.get(key)
            if waiting is None:
                self._groups[key] = deque([message])
                self._ready[level.index].append(key)
                self._scheduler.ready(level.index)
            else:
                waiting.append(message)

    def _hold(self, message: Message[Any]) -> None:
        self.activity.busy()
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
        """The message's slot is free: it is settled, or its delete is queued (then :meth:`_deleted` stops
        tracking it once the delete is over)."""
        if message in self._held:
            self._held.discard(message)
            level = self._by_queue[message.queue]
            if message in self._started:
                self._started.discard(message)
            else:
                self._scheduler.held(level.index, -1)
            if not self._deleting(message):
                self._heartbeat.untrack(message)
            level.slots.release()
            self.stats.in_flight -= 1
            self.activity.busy()

    def _deleted(self, message: Message[Any]) -> None:
        """A queued delete is over (done, or failed: the message comes back after its visibility timeout)."""
        if message not in self._held:  # else _forget, still to come, stops tracking it
            self._heartbeat.untrack(message)
            self.activity.busy()

    def _deleting(self, message: Message[Any]) -> bool:
        return self._acks is not None and message in self._acks.messages

    # -- running --------------------------------------------------------------------------------------

    async def _runner(self) -> None:
        """One of ``concurrency`` long-lived runners: take a turn, run one unit of its level, repeat."""
        scheduler = self._scheduler
        while True:
            level, slot = await scheduler.take()
            unit = self._ready[level].popleft()
            self._active += 1
            try:
                if isinstance(unit, Message):
                    if not self._stopping:  # stopping: it was given back
                        await self._process(unit)
                elif isinstance(unit, list):
                    await self._run_batch(unit)
                else:
                    await self._run_next(level, unit)
            finally:
                scheduler.done(slot)
                self._active -= 1
                if not self._active:
                    self._idle.set()

    async def _run_next(self, level: int, key: tuple[int, str]) -> None:
        """Run the next message of a FIFO group."""
        waiting = self._groups[key]
        if self._stopping or not waiting:  # stopping: its messages were given back
            self._groups.pop(key, None)
            return
        message = waiting.popleft()
        succeeded = await self._process(message)
        if waiting and not succeeded:
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
            return await self._handler.run(message)
        except BaseException:
            if not self._deleting(message):
                with anyio.CancelScope(shield=True):  # cancelled mid-way (drain timeout): give it back
                    await self._executor.release([message])
            raise
        finally:
            self._forget(message)

    async def _run_batch(self, messages: list[Message[Any]]) -> None:
        try:
            if self._stopping:  # its messages were given back
                return
            for message in messages:
                self._start(message)
            try:
                await self._handler.run_batch(messages, self._release_one)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    unsettled = [m for m in messages if m in self._held and not m.settled]
                    await self._executor.release([m for m in unsettled if not self._deleting(m)])
                raise
        finally:
            for message in messages:
                self._forget(message)

    # -- settling -------------------------------------------------------------------------------------

    async def _release_one(self, message: Message[Any]) -> None:
        await self._executor.release([message])

    async def _settle(
        self, message: Message[Any], outcome: BaseException | None, *, poison: bool = False
    ) -> bool:
        return await self._handler.settle(message, outcome, poison=poison)

    async def _release_unstarted(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._executor.release([m for m in self._held if m not in self._started])
