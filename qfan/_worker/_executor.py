"""Carrying out settle decisions: delete, retry after a delay, copy to the dead-letter queue, release.

What to do is :func:`qfan._settle.decide`'s (pure); this does it, and never loses a message doing so: a
failed copy to the dead-letter queue leaves the message to be retried, a failed delete or visibility change
leaves it to come back after its visibility timeout.

A worker on a standard queue does not wait for its deletes (:class:`PendingAcks`): the delete is queued
for the next batch and the worker's runner and slot go to the next message, while the heartbeat keeps the
message invisible until the delete is acknowledged (``stats.succeeded`` counts it then). Waiting for the
delete's round trip would cap a worker at ``concurrency / RTT`` messages per second (about 700/s for 32
runners 20 ms away from SQS). At most ``limit`` deletes are pending at once: past it a runner waits for its
delete, so deletes that slow down (throttling, a degraded endpoint) slow intake down, as they did before.
The worker waits for its pending deletes before it stops (at most its drain timeout). A FIFO worker always
waits: the next message of a group must not run before the previous one is surely gone; so does a priority
worker, whose shares are chosen among the messages it holds. Queued deletes need
asyncio (their batches are flushed by tasks of their own); on another event loop every delete is awaited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import anyio

from .._exceptions import MessageError, QfanError
from .._pipeline._message import Message
from .._resources._queue import Queue
from .._resources._redrive import DEAD_LETTER_ATTRIBUTES
from .._wire._attributes import MAX_ATTRIBUTES, AttributeValue
from ._settle import Action, DeadLetter, Delete, RetryAfter, Settled
from ._worker import Worker

logger = logging.getLogger("qfan")

DEAD_LETTER_REASON, DEAD_LETTER_ERROR, DEAD_LETTER_RECEIVE_COUNT, DEAD_LETTER_SOURCE = DEAD_LETTER_ATTRIBUTES
_MAX_REASON = 1_000


class PendingAcks:
    """The deletes a worker queued without waiting for them (see the module docstring).

    Args:
        worker: the worker (its name and stats: ``succeeded`` counts a delete once it is acknowledged).
        deleted: called for every message once its delete is over, done or failed.
        limit: the most deletes pending at once (past it, :meth:`has_room` is false).
    """

    def __init__(self, worker: Worker, deleted: Callable[[Message[Any]], None], limit: int) -> None:
        self.worker = worker
        self.messages: set[Message[Any]] = set()
        self._deleted = deleted
        self._limit = limit
        self._idle: anyio.Event | None = None

    def has_room(self) -> bool:
        """Whether another delete may be queued without waiting for it."""
        return len(self.messages) < self._limit

    def start(self, message: Message[Any]) -> None:
        """Queue the message's delete."""
        self.messages.add(message)
        try:
            message.ack_soon(partial(self._done, message))
        except QfanError as exc:  # refused before it was queued (the queue was deleted meanwhile)
            self._done(message, exc)

    def _done(self, message: Message[Any], error: QfanError | None) -> None:
        self.messages.discard(message)
        if error is None:
            self.worker.stats.succeeded += 1
        else:
            logger.error("worker %s: ack of %s failed: %s", self.worker.name, message.message_id, error)
        self._deleted(message)
        if not self.messages and self._idle is not None:
            self._idle.set()

    async def wait(self) -> None:
        """Until every queued delete is over."""
        while self.messages:
            self._idle = anyio.Event()
            await self._idle.wait()


class SettleExecutor:
    """Performs one worker's settle actions and keeps its counters.

    Args:
        worker: the worker (its name, backoff and stats).
        queues: the worker's queues by name (a message names the queue it came from).
        forget: called for every message given back unstarted (the engine stops tracking it).
        acks: where deletes are queued without waiting (``None``: every delete is awaited).
    """

    def __init__(
        self,
        worker: Worker,
        queues: Mapping[str, Queue[Any]],
        forget: Callable[[Message[Any]], None],
        acks: PendingAcks | None = None,
    ) -> None:
        self.worker = worker
        self.stats = worker.stats
        self._queues = queues
        self._forget = forget
        self.acks = acks

    async def perform(self, message: Message[Any], action: Action) -> bool:
        """Carry out a settle decision; True when the message is gone because it was handled."""
        if isinstance(action, Settled):
            self.stats.succeeded += 1
            return True
        if isinstance(action, Delete):
            if self.acks is not None and self.acks.has_room():
                self.acks.start(message)
                return True
            try:
                await message.ack()
            except QfanError as exc:
                logger.error("worker %s: ack of %s failed: %s", self.worker.name, message.message_id, exc)
                return False
            self.stats.succeeded += 1
            return True
        if isinstance(action, DeadLetter):
            await self.dead_letter(message, action.reason, action.error)
        elif isinstance(action, RetryAfter):
            if action.undeliverable:
                logger.error(
                    "worker %s: message %s should be dead-lettered (%s) but queue %s has no dead_letter; "
                    "it will be retried after the longest backoff",
                    self.worker.name,
                    message.message_id,
                    action.reason,
                    message.queue,
                )
            await self.retry(message, action.delay)
        else:
            await self.release([message])
        return False

    async def retry(self, message: Message[Any], wait: int) -> None:
        try:
            await message.nack(wait)
        except QfanError as exc:  # it comes back after its visibility timeout anyway
            logger.warning("worker %s: could not delay %s: %s", self.worker.name, message.message_id, exc)
        self.stats.retried += 1

    async def release(self, messages: list[Message[Any]]) -> None:
        async def release(message: Message[Any]) -> None:
            try:
                await message.nack(0)
            except QfanError as exc:
                logger.warning(
                    "worker %s: could not release %s: %s", self.worker.name, message.message_id, exc
                )
            self.stats.released += 1
            self._forget(message)

        async with anyio.create_task_group() as tg:
            for message in messages:
                tg.start_soon(release, message)

    async def dead_letter(self, message: Message[Any], reason: str, error: BaseException) -> None:
        """Copy the message to the dead-letter queue with the reason, then delete it: never lose it."""
        queue = self._queues[message.queue]
        target = queue.dead_letter
        assert target is not None, "decide() dead-letters only where there is a dead-letter queue"
        attributes = reason_attributes(message, reason, error, queue.name)
        try:
            try:
                await target.forward(message, attributes=attributes)
            except MessageError:  # no room for the reason: the message itself matters more
                await target.forward(message)
            await message.ack()
        except QfanError as exc:
            logger.error("worker %s: dead-lettering %s failed: %s", self.worker.name, message.message_id, exc)
            await self.retry(message, self.worker.backoff.delay(message.receive_count))
            return
        logger.warning("worker %s: dead-lettered %s: %s", self.worker.name, message.message_id, reason)
        self.stats.dead_lettered += 1


def reason_attributes(
    message: Message[Any], reason: str, error: BaseException, source: str
) -> dict[str, AttributeValue]:
    """As many reason attributes as fit beside the message's own (SQS allows 10), most useful first."""
    candidates: list[tuple[str, AttributeValue]] = [
        (DEAD_LETTER_REASON, reason[:_MAX_REASON]),
        (DEAD_LETTER_ERROR, type(error).__name__),
        (DEAD_LETTER_RECEIVE_COUNT, message.receive_count),
        (DEAD_LETTER_SOURCE, source),
    ]
    room = MAX_ATTRIBUTES - len(message.wire_attributes)
    return dict(candidates[: max(0, room)])
