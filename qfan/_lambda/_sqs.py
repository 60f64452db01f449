"""One SQS event, handled the way a worker handles its messages, answered as a partial batch response.

Each record goes through the inbound pipeline (:func:`qfan._pipeline._inbound.arrive`) and the worker's
:class:`~qfan._worker._runner.HandlerRunner`, so decoding and settling are the worker's. What differs is who
deletes: Lambda's event source mapping deletes every message the response does not report, so

==============================================  ========================================================
the handler...                                  the record
==============================================  ========================================================
returns, or raises ``qfan.Ack``                 is not reported (Lambda deletes it; an offloaded one is
                                                deleted here first, message then payload)
raises ``qfan.Reject``, or its body is poison   is copied to the dead-letter queue with the reason, and
                                                not reported
raises anything else, or ``qfan.Retry``         is reported (visible again after the backoff, or delay)
is still running near the deadline              is given up and reported
is later in a FIFO group than a failed one      is reported and not run
==============================================  ========================================================

A record is reported exactly when its message was not deleted through its :class:`LambdaReceipts`: a
failed copy to the dead-letter queue leaves it reported, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from .._exceptions import ConfigError, QfanError
from .._pipeline._hooks import HookSet
from .._pipeline._inbound import arrive
from .._pipeline._message import AwaitedSettler, Message
from .._resources._queue import Queue
from .._transport import ReceivedMessage
from .._wire._codec import Decoder
from .._wire._envelope import AcceptedTopics
from .._wire._pointer import PayloadLocation
from .._worker._executor import SettleExecutor
from .._worker._runner import HandlerRunner
from .._worker._worker import Middleware, Worker
from ._records import from_sqs_record, queue_name_of

logger = logging.getLogger("qfan")

Opener = Callable[[], Awaitable[None]]
"""Opens the app's connection if it is not open yet (only what needs AWS calls it)."""


class LambdaReceipts(AwaitedSettler):
    """Settles one queue's messages as Lambda's event source mapping expects (a :class:`Settler`).

    ``ack`` records the message as done (Lambda deletes what is not reported); an offloaded message is
    deleted here, message first and then its payload, which Lambda would leave behind. Visibility changes
    (a retry's backoff) are made on the queue itself.
    """

    def __init__(self, queue: Queue[Any], open_app: Opener) -> None:
        self.name = queue.name
        self.deleted: set[str] = set()
        self._queue = queue
        self._open = open_app

    async def delete_receipt(self, receipt_handle: str, *, payload: PayloadLocation | None = None) -> None:
        if payload is not None:
            await self._open()
            await self._queue.delete_receipt(receipt_handle, payload=payload)
        self.deleted.add(receipt_handle)

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        await self._open()
        await self._queue.change_visibility(receipt_handle, seconds)


class LambdaExecutor(SettleExecutor):
    """The worker's executor, opening the app before the first dead-letter copy needs it."""

    def __init__(self, worker: Worker, queue: Queue[Any], open_app: Opener) -> None:
        super().__init__(worker, {queue.name: queue}, lambda _message: None)
        self._open = open_app

    async def dead_letter(self, message: Message[Any], reason: str, error: BaseException) -> None:
        try:
            await self._open()
        except QfanError as exc:  # not copied, not deleted: reported, so Lambda gives it back
            logger.error("worker %s: cannot dead-letter %s: %s", self.worker.name, message.message_id, exc)
            return
        await super().dead_letter(message, reason, error)


class QueueRoute:
    """Everything needed to handle records from one queue: its worker, runner, decoder, receipts.

    Created on the handler's event loop (anyio primitives), once per queue, and reused by warm invocations.
    """

    def __init__(
        self,
        worker: Worker,
        queue: Queue[Any],
        hooks: HookSet,
        middleware: Sequence[Middleware],
        open_app: Opener,
    ) -> None:
        self.worker = worker
        self.queue = queue
        self.hooks = hooks
        self.decoder: Decoder[Any] = Decoder(worker.handler.body_type)
        executor = LambdaExecutor(worker, queue, open_app)
        # At the deadline a sync handler's thread is left to finish: the response must not wait for it.
        self.runner = HandlerRunner(
            worker, {queue.name: queue}, executor, hooks, middleware, abandon_on_cancel=True
        )
        self.open_app = open_app

    async def arrive(
        self, received: Sequence[ReceivedMessage], arn: str
    ) -> tuple[list[Message[Any]], LambdaReceipts]:
        """The records' messages through the inbound pipeline, settled through fresh receipts."""
        receipts = LambdaReceipts(self.queue, self.open_app)
        payloads = None
        if self.queue.offload is not None:  # fetching payloads needs S3 (and the queue's policy declared)
            await self.open_app()
            payloads = await self.queue.payloads()
        topics = AcceptedTopics(self.queue.accepted_topics, arn) if self.queue.accepted_topics else None
        return await arrive(received, self.decoder, receipts, payloads, topics, self.hooks), receipts


def route_for(arn: str, routes: Mapping[str, QueueRoute]) -> QueueRoute:
    """The route of the queue an ARN names; ``ConfigError`` naming the known queues when there is none."""
    route = routes.get(queue_name_of(arn))
    if route is None:
        known = ", ".join(sorted(routes)) or "none"
        raise ConfigError(f"no worker is registered for queue {arn!r} (queues with workers: {known})")
    return route


async def handle_sqs_event(
    records: Sequence[Mapping[str, Any]], routes: Mapping[str, QueueRoute], seconds_left: float
) -> list[str]:
    """Handle an SQS event's records; the message ids to report as failed, in record order."""
    by_arn: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_arn.setdefault(str(record.get("eventSourceARN")), []).append(record)
    chosen = {arn: route_for(arn, routes) for arn in by_arn}  # every record routable, before any runs
    arrived: list[tuple[list[Message[Any]], LambdaReceipts]] = []
    with anyio.move_on_after(seconds_left if seconds_left > 0 else 0):
        for arn, group in by_arn.items():
            received = [from_sqs_record(record) for record in group]
            arrived.append(await chosen[arn].arrive(received, arn))
        async with anyio.create_task_group() as tg:
            for (messages, _), route in zip(arrived, chosen.values(), strict=True):
                tg.start_soon(_run_queue, route, messages)
    deleted = {handle for _, receipts in arrived for handle in receipts.deleted}
    return [
        str(record.get("messageId")) for record in records if str(record.get("receiptHandle")) not in deleted
    ]


async def _run_queue(route: QueueRoute, messages: list[Message[Any]]) -> None:
    """Run one queue's messages: up to the worker's concurrency at once; a FIFO group in order, stopping at
    its first failure (the group's later messages are reported, not run)."""
    route.worker.stats.received += len(messages)
    if route.worker.batch_size is not None:
        await _run_batches(route, messages, route.worker.batch_size)
        return
    units: dict[str, list[Message[Any]]] = {}
    for message in messages:
        key = message.group_id if route.queue.fifo and message.group_id else message.message_id
        units.setdefault(key, []).append(message)
    slots = anyio.Semaphore(route.worker.concurrency)

    async def run_unit(unit: list[Message[Any]]) -> None:
        async with slots:
            for message in unit:
                await route.runner.run(message)
                if route.queue.fifo and not message.settled:
                    return  # reported: nothing later in its group may overtake it

    async with anyio.create_task_group() as tg:
        for unit in units.values():
            tg.start_soon(run_unit, unit)


async def _run_batches(route: QueueRoute, messages: list[Message[Any]], size: int) -> None:
    """A batch handler gets the records in lists of its ``batch_size``: concurrently up to its concurrency,
    or on a FIFO queue in order, a group's messages after a reported one left unrun (and so reported)."""
    chunks = [messages[i : i + size] for i in range(0, len(messages), size)]
    if not route.queue.fifo:
        slots = anyio.Semaphore(route.worker.concurrency)

        async def run(chunk: list[Message[Any]]) -> None:
            async with slots:
                await route.runner.run_batch(chunk, _leave_reported)

        async with anyio.create_task_group() as tg:
            for chunk in chunks:
                tg.start_soon(run, chunk)
        return
    stopped: set[str | None] = set()
    for chunk in chunks:
        await route.runner.run_batch([m for m in chunk if m.group_id not in stopped], _leave_reported)
        stopped |= {m.group_id for m in chunk if not m.settled}


async def _leave_reported(message: Message[Any]) -> None:
    """Not settled: the message is reported, and Lambda gives it back."""
