"""The queue handle: declare, send (coalesced into batches), receive, and settle messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from .._exceptions import ConfigError, MessageTooLarge
from .._pipeline._batching import MAX_BATCH_ENTRIES, Finished
from .._pipeline._connection import Connection
from .._pipeline._delays import Delay, Postponer
from .._pipeline._inbound import arrive
from .._pipeline._message import Message
from .._pipeline._offload import Offload
from .._pipeline._outbound import Outbound, sqs_batches
from .._pipeline._outgoing import Destination, Outgoing, to_system
from .._pipeline._payloads import Payloads
from .._pipeline._receipts import Receipts
from .._transport import MoveTask
from .._wire._attributes import AttributeValue, check_count, encode_attributes, wire_size
from .._wire._codec import Decoder, Encoder, Format
from .._wire._envelope import AcceptedTopics
from .._wire._limits import MAX_VISIBILITY, utf8_size
from .._wire._pointer import PayloadLocation
from ._consumer import Consumer
from ._declaration import QueueInfo, declare_queue
from ._handle import Handle
from ._levels import Levels
from ._queue_options import QueueOptions
from ._queue_policy import merge_sns_statement

T = TypeVar("T")
R = TypeVar("R")

_DEFAULT_RETENTION = 345_600  # SQS's default: 4 days


class _Declared:
    """Per-connection state of a declared queue: its info, its outbound pipeline, receipts, payloads."""

    def __init__(
        self, queue: Queue[Any], connection: Connection, info: QueueInfo, payloads: Payloads | None
    ) -> None:
        self.connection = connection
        self.info = info
        self.payloads = payloads
        linger = connection.linger
        self.outbound = Outbound(
            Destination(queue.name, queue.fifo, info.content_based_dedup, info.max_message_size),
            queue.encoder,
            payloads,
            sqs_batches(connection.sqs, info.url, queue.fifo),
            linger=linger,
            hooks=connection.hooks,
            delays=connection.delays,
        )
        # Standard queues only: FIFO queues take no per-message delay, so nothing long-delayed is on them.
        self.postpone = None if queue.fifo else Postponer(connection.sqs, info.url, connection.delays)
        self.receipts = Receipts(connection.sqs, info.url, payloads, linger=linger)


class Queue(Handle[_Declared, QueueInfo], Generic[T]):
    """A handle on one SQS queue; create it with :meth:`qfan.App.queue`.

    Declaring is idempotent and happens when the app opens (or on first use): the queue is created if
    missing, else its URL and attributes are read and compared with the declaration.
    """

    def __init__(
        self,
        options: QueueOptions,
        *,
        type: type[T] | Any,
        format: Format,
        dead_letter: Queue[Any] | None,
        connect: Callable[[], Connection],
        offload: Offload | None = None,
    ) -> None:
        if dead_letter is not None and dead_letter.fifo != options.fifo:
            raise ConfigError(
                f"queue {options.name!r}: its dead-letter queue {dead_letter.name!r} must be "
                f"{'a FIFO' if options.fifo else 'a standard'} queue too"
            )
        super().__init__(options, connect)
        self.options = options
        self.dead_letter = dead_letter
        self.offload = offload
        self.encoder = Encoder(format)
        self._decoder: Decoder[T] = Decoder(type)
        self.body_type: Any = type  # what bodies are decoded into (an archive's default record type)
        self._topics: list[str] = []
        self._topic_rule: AcceptedTopics | None = None

    # -- declaring ------------------------------------------------------------------------------------

    async def _declare_on(self, connection: Connection) -> _Declared:
        dead_letter_arn = None if self.dead_letter is None else (await self.dead_letter.declare()).arn
        info = await declare_queue(connection, self.options, dead_letter_arn)
        return _Declared(self, connection, info, await self._declare_payloads(connection, info))

    async def _declare_payloads(self, connection: Connection, info: QueueInfo) -> Payloads | None:
        if self.offload is None:
            return None
        payloads = Payloads(
            self.offload,
            await connection.s3(),
            queue=self.name,
            max_message_size=info.max_message_size,
            hooks=connection.hooks,
        )
        await payloads.declare(self._longest_life(info))
        return payloads

    def _longest_life(self, info: QueueInfo) -> int:
        """Seconds a message may exist: its retention here, plus its dead-letter queue's if it has one
        (a FIFO dead-letter queue restarts the clock, so the sum is the bound for both kinds)."""
        seconds = int(info.attributes.get("MessageRetentionPeriod", _DEFAULT_RETENTION))
        if self.dead_letter is not None:
            dead = self.dead_letter.info.attributes
            seconds += int(dead.get("MessageRetentionPeriod", _DEFAULT_RETENTION))
        return seconds

    def consumed_levels(self) -> Levels:
        """What a worker on this queue consumes: one level, this queue."""
        return Levels({self.name: self})

    async def payloads(self) -> Payloads | None:
        """The offloading side of this queue, declared (``None`` without an offload policy)."""
        return (await self._state()).payloads

    @property
    def payload_delete_failures(self) -> int:
        """Offloaded payloads whose S3 delete failed after their message was acked (see the log)."""
        declared = self._declared
        return 0 if declared is None or declared.payloads is None else declared.payloads.delete_failures

    async def attributes(self) -> dict[str, str]:
        """The queue's current attributes, e.g. ``ApproximateNumberOfMessages`` (not cached)."""
        state = await self._state()
        conn = state.connection
        return await conn.sqs.get_queue_attributes(state.info.url)

    async def dead_letter_sources(self) -> list[str]:
        """URLs of the queues whose redrive policy names this queue as their dead-letter queue."""
        state = await self._state()
        conn = state.connection
        return await conn.sqs.list_dead_letter_source_queues(state.info.url)

    async def start_move_task(self, destination: Queue[Any] | None = None) -> str:
        """Start SQS's own move of this (dead-letter) queue's messages back to their source queues, or to
        ``destination``; returns the task handle. Not every emulator implements it."""
        state = await self._state()
        conn = state.connection
        target = None if destination is None else (await destination.declare()).arn
        return await conn.sqs.start_message_move_task(state.info.arn, target)

    async def move_tasks(self) -> list[MoveTask]:
        """SQS's recent move tasks from this (dead-letter) queue, most recent first."""
        state = await self._state()
        return await state.connection.sqs.list_message_move_tasks(state.info.arn)

    def accept_topic(self, topic: str) -> None:
        """Unwrap SNS envelopes from ``topic`` (a name in the queue's region and account, or an ARN).

        Once a queue accepts a topic — :meth:`qfan.App.subscribe` does this for its subscriptions — an
        envelope from any other topic is refused (``qfan.EnvelopeRefused`` on ``body``; workers
        dead-letter it). A queue that accepts no topic unwraps every envelope. Call this for topics
        subscribed outside qfan (e.g. by CloudFormation) to get the same protection.
        """
        if not isinstance(topic, str) or not topic:
            raise ConfigError(f"accept_topic needs a topic name or ARN, got {topic!r}")
        if topic not in self._topics:
            self._topics.append(topic)
            self._topic_rule = None

    @property
    def accepted_topics(self) -> tuple[str, ...]:
        """The topics whose envelopes this queue unwraps (empty: any)."""
        return tuple(self._topics)

    def _accepted(self, queue_arn: str) -> AcceptedTopics | None:
        if not self._topics:
            return None
        if self._topic_rule is None:
            self._topic_rule = AcceptedTopics(self._topics, queue_arn)
        return self._topic_rule

    async def allow_topic(self, topic_arn: str) -> bool:
        """Make sure the queue policy lets ``topic_arn`` deliver here; returns whether it had to change."""
        state = await self._state()
        conn, url = state.connection, state.info.url
        current = (await conn.sqs.get_queue_attributes(url)).get("Policy")
        merged = merge_sns_statement(current, state.info.arn, topic_arn)
        if merged is None:
            return False
        await conn.sqs.set_queue_attributes(url, {"Policy": merged})
        return True

    async def purge(self) -> None:
        """Delete every message in the queue (SQS allows one purge per 60 s)."""
        state = await self._state()
        conn = state.connection
        await conn.sqs.purge_queue(state.info.url)

    async def delete(self) -> None:
        """Delete the queue itself. The handle declares it again on next use."""
        state = await self._state()
        conn = state.connection
        await conn.sqs.delete_queue(state.info.url)
        self._declared = None

    # -- sending --------------------------------------------------------------------------------------

    async def send(
        self,
        value: T,
        *,
        delay: Delay | None = None,
        delay_until: datetime | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> str:
        """Send one message and return its SQS message id.

        Concurrent calls are coalesced into ``SendMessageBatch`` calls; each caller still gets its own
        message id or its own error.

        Args:
            value: the body; encoded per the queue's format (see ``qfan._codec``).
            delay: seconds (or a ``timedelta``) before the message becomes visible; standard queues only.
                Beyond 15 minutes it travels in hops (see README, "Long delays").
            delay_until: a timezone-aware time to deliver it at instead; standard queues only.
            group_id: the message group (required on FIFO queues; "fair queues" on standard ones).
            dedup_id: FIFO deduplication id (required unless the queue has content-based dedup).
            attributes: up to 9 message attributes.
        """
        outbound = (await self._state()).outbound
        return await outbound.send(
            value,
            delay=delay,
            delay_until=delay_until,
            group_id=group_id,
            dedup_id=dedup_id,
            attributes=attributes,
        )

    async def send_many(
        self,
        values: Iterable[T],
        *,
        delay: Delay | None = None,
        group_id: str | None = None,
        dedup_id: Callable[[T], str] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> list[str]:
        """Send many messages in full batches and return their ids, in order.

        Every value is encoded and checked (and, on an offloading queue, every large body uploaded to S3)
        before anything is sent. On a FIFO queue, batches go out one after another, so the queue holds
        the values in iteration order. Raises ``BatchSendError`` (which says which values were not sent)
        if any value failed.

        Args:
            dedup_id: a function giving each value's FIFO deduplication id.
        """
        outbound = (await self._state()).outbound
        return await outbound.send_many(
            values, dedup_id, delay=delay, group_id=group_id, attributes=attributes
        )

    async def forward(
        self,
        message: Message[Any],
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        exclude: Iterable[str] = (),
    ) -> str:
        """Send a copy of a received message to this queue: same body, same attributes plus ``attributes``
        and without those named in ``exclude``.

        On a FIFO queue the copy keeps the message's group and is deduplicated by the original message id,
        so forwarding the same delivery twice enqueues one copy.

        An offloaded message is forwarded as it travelled, as a pointer to its S3 payload, and the payload
        then belongs to the copy: acking the original no longer deletes it.
        """
        state = await self._state()
        dropped = set(exclude)
        kept = {name: value for name, value in message.wire_attributes.items() if name not in dropped}
        wire = {**kept, **encode_attributes(attributes)}
        check_count(wire)
        size = utf8_size(message.wire_body) + wire_size(wire)
        if size > state.info.max_message_size:
            raise MessageTooLarge(size, state.info.max_message_size, self.name)
        group_id = message.group_id if self.fifo else None
        dedup_id = message.message_id if self.fifo else None
        if self.fifo and group_id is None:
            group_id = message.message_id  # from a standard queue: each copy is its own group
        system = to_system(message.trace_header)  # the copy keeps its X-Ray trace context too
        message_id = await state.outbound.send_entry(
            Outgoing(message.wire_body, wire, size, None, group_id, dedup_id, system_attributes=system)
        )
        message.retain_payload()
        return message_id

    # -- receiving ------------------------------------------------------------------------------------

    async def receive(
        self, max_messages: int = 10, *, wait: int | None = None, visibility: int | None = None
    ) -> list[Message[T]]:
        """Receive up to ``max_messages`` (1-10), long-polling up to ``wait`` seconds.

        Args:
            wait: seconds to wait for a message (0-20); defaults to the queue's receive wait, else 20.
            visibility: seconds the messages stay invisible to others (default: the queue's setting).
        """
        if isinstance(max_messages, bool) or not 1 <= max_messages <= MAX_BATCH_ENTRIES:
            raise ConfigError(f"max_messages must be between 1 and 10, got {max_messages!r}")
        if wait is not None and not 0 <= wait <= 20:
            raise ConfigError(f"wait must be between 0 and 20 seconds, got {wait!r}")
        if visibility is not None and not 0 <= visibility <= MAX_VISIBILITY:
            raise ConfigError(f"visibility must be between 0 and {MAX_VISIBILITY}, got {visibility!r}")
        return await self.receive_with(self._decoder, max_messages, wait, visibility)

    async def receive_with(
        self, decoder: Decoder[R], max_messages: int, wait: int | None, visibility: int | None
    ) -> list[Message[R]]:
        """``receive`` (arguments unchecked) with bodies decoded by ``decoder``: a worker decodes into its
        handler's type, whatever the queue's."""
        state = await self._state()
        conn = state.connection
        wait_seconds = self.options.wait_seconds if wait is None else wait
        raw = await conn.sqs.receive(
            state.info.url,
            max_messages=max_messages,
            wait_seconds=wait_seconds,
            visibility_timeout=visibility,
        )
        topics = self._accepted(state.info.arn)
        return await arrive(raw, decoder, self, state.payloads, topics, conn.hooks, state.postpone)

    def consume(
        self, *, prefetch: int = 10, wait: int | None = None, visibility: int | None = None
    ) -> Consumer[T]:
        """Iterate over messages as they arrive, holding at most ``prefetch`` received messages.

        Use ``async with queue.consume() as messages: async for m in messages: ...`` to give back
        (make visible again) whatever was prefetched but not handed out when the block ends.
        """
        return Consumer(self.receive, prefetch=prefetch, wait=wait, visibility=visibility, ordered=self.fifo)

    # -- settling (used by Message) -------------------------------------------------------------------

    async def delete_receipt(self, receipt_handle: str, *, payload: PayloadLocation | None = None) -> None:
        """Delete one message by receipt handle (coalesced into DeleteMessageBatch), then its payload.

        The message is deleted first: if that fails, the payload stays, so the message can still be read
        when it is delivered again. The payload (``payload``, or the one named in a receipt handle in AWS's
        Java format) is then deleted if the queue's offload policy says so and allows it; a failure there is
        logged and counted (:attr:`payload_delete_failures`), never raised.
        """
        await (await self._state()).receipts.delete(receipt_handle, payload)

    def delete_receipt_soon(self, handle: str, payload: PayloadLocation | None, done: Finished) -> None:
        """:meth:`delete_receipt` without waiting: the delete joins the next batch, and ``done`` gets ``None``
        once the message (then its payload) is deleted, or the error that kept the message. The queue is
        declared already: the message came from it."""
        self._known().receipts.delete_soon(handle, payload, done)

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Set one message's visibility timeout (coalesced into ChangeMessageVisibilityBatch).

        Receipt handles in AWS's Java extended-client format are accepted.
        """
        await (await self._state()).receipts.change_visibility(receipt_handle, seconds)
