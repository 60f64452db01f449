"""The queue handle: declare, send (coalesced into batches), receive, and settle messages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import anyio

from ._attributes import AttributeValue, to_wire, wire_size
from ._batching import MAX_BATCH_ENTRIES, Coalescer
from ._codec import Decoder, Encoder, Format
from ._consumer import Consumer
from ._exceptions import (
    BatchSendError,
    ChecksumMismatch,
    ConfigError,
    MessageTooLarge,
    QfanError,
    QueueConflict,
    QueueNameExists,
    QueueNotFound,
)
from ._message import MAX_VISIBILITY, Message
from ._queue_options import (
    MAX_MESSAGE_SIZE,
    QueueOptions,
    attribute_differences,
    immutable_differences,
    tag_differences,
)
from ._transport import (
    ReceiptEntry,
    SendEntry,
    SentMessage,
    SqsConnection,
    VisibilityEntry,
    WireAttributes,
    md5_of_attributes,
    md5_of_body,
)

T = TypeVar("T")

logger = logging.getLogger("qfan")

_SEND_MANY_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class _Outgoing:
    body: str
    attributes: WireAttributes
    size: int
    delay: int | None
    group_id: str | None
    dedup_id: str | None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """What declaring a queue learned about it.

    Attributes:
        url: the queue URL every call uses.
        arn: the queue ARN (for redrive policies and subscriptions).
        max_message_size: the queue's ``MaximumMessageSize`` in bytes.
        content_based_dedup: whether a FIFO queue derives dedup ids from bodies.
        attributes: all attributes as SQS reported them at declare time.
    """

    url: str
    arn: str
    max_message_size: int
    content_based_dedup: bool
    attributes: Mapping[str, str]


class _Declared:
    """Per-connection state of a declared queue: its info and its three coalescers."""

    def __init__(self, queue: Queue[Any], connection: SqsConnection, info: QueueInfo) -> None:
        self.connection = connection
        self.info = info
        linger = connection.linger
        self.sends: Coalescer[_Outgoing, str] = Coalescer(
            queue._send_batch,
            linger=linger,
            max_bytes=info.max_message_size,
            size_of=lambda entry: entry.size,
            serial=queue.fifo,
        )
        self.deletes: Coalescer[str, None] = Coalescer(queue._delete_batch, linger=linger)
        self.visibility: Coalescer[tuple[str, int], None] = Coalescer(queue._visibility_batch, linger=linger)


class Queue(Generic[T]):
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
        connect: Callable[[], SqsConnection],
    ) -> None:
        if dead_letter is not None and dead_letter.fifo != options.fifo:
            raise ConfigError(
                f"queue {options.name!r}: its dead-letter queue {dead_letter.name!r} must be "
                f"{'a FIFO' if options.fifo else 'a standard'} queue too"
            )
        self.options = options
        self.dead_letter = dead_letter
        self._connect = connect
        self._encoder = Encoder(format)
        self._decoder: Decoder[T] = Decoder(type)
        self._declared: _Declared | None = None
        self._declare_lock = anyio.Lock()

    @property
    def name(self) -> str:
        """The queue name."""
        return self.options.name

    @property
    def fifo(self) -> bool:
        """Whether this is a FIFO queue."""
        return self.options.fifo

    @property
    def info(self) -> QueueInfo:
        """What declaring learned (URL, ARN, limits); raises ``QfanError`` before the first declare."""
        if self._declared is None:
            raise QfanError(f"queue {self.name!r} is not declared yet: await queue.declare()")
        return self._declared.info

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}{' fifo' if self.fifo else ''}>"

    # -- declaring ------------------------------------------------------------------------------------

    async def declare(self) -> QueueInfo:
        """Create the queue if missing, else check (or update) its attributes. Idempotent."""
        return (await self._state()).info

    async def _state(self) -> _Declared:
        connection = self._connect()
        declared = self._declared
        if declared is not None and declared.connection is connection:
            return declared
        async with self._declare_lock:
            if self._declared is None or self._declared.connection is not connection:
                info = await self._declare(connection)
                self._declared = _Declared(self, connection, info)
            return self._declared

    async def _declare(self, conn: SqsConnection) -> QueueInfo:
        control, retry, name = conn.control, conn.retry, self.name
        dead_letter_arn = None
        if self.dead_letter is not None:
            dead_letter_arn = (await self.dead_letter.declare()).arn
        wanted = self.options.attributes(dead_letter_arn)
        created = False
        try:
            url = await retry.call(lambda: control.get_queue_url(name))
        except QueueNotFound:
            if not self.options.create:
                raise
            try:
                url = await retry.call(lambda: control.create_queue(name, wanted, self.options.tags))
                created = True
            except QueueNameExists:  # a concurrent declaration with other attributes won the race
                url = await retry.call(lambda: control.get_queue_url(name))
        attributes = await retry.call(lambda: control.get_queue_attributes(url))
        if not created:
            attributes = await self._reconcile(conn, url, wanted, attributes)
        return QueueInfo(
            url=url,
            arn=attributes.get("QueueArn", ""),
            max_message_size=int(attributes.get("MaximumMessageSize", MAX_MESSAGE_SIZE)),
            content_based_dedup=attributes.get("ContentBasedDeduplication", "").lower() == "true",
            attributes=attributes,
        )

    async def _reconcile(
        self, conn: SqsConnection, url: str, wanted: dict[str, str], existing: dict[str, str]
    ) -> dict[str, str]:
        """Compare an existing queue with the declaration; update it only when asked to."""
        control, retry = conn.control, conn.retry
        differences = attribute_differences(wanted, existing)
        tags = self.options.tags
        tag_diff = tag_differences(tags, await retry.call(lambda: control.list_queue_tags(url)))
        if not differences and not tag_diff:
            return existing
        fixed = immutable_differences(differences)
        if fixed:
            raise QueueConflict(self.name, fixed)
        if self.options.on_conflict != "update":
            raise QueueConflict(self.name, {**differences, **tag_diff})
        if differences:
            changes = {name: wanted[name] for name in differences}
            await retry.call(lambda: control.set_queue_attributes(url, changes))
        if tag_diff:
            await retry.call(lambda: control.tag_queue(url, tags))
        return await retry.call(lambda: control.get_queue_attributes(url))

    async def attributes(self) -> dict[str, str]:
        """The queue's current attributes, e.g. ``ApproximateNumberOfMessages`` (not cached)."""
        state = await self._state()
        conn = state.connection
        return await conn.retry.call(lambda: conn.control.get_queue_attributes(state.info.url))

    async def purge(self) -> None:
        """Delete every message in the queue (SQS allows one purge per 60 s)."""
        state = await self._state()
        conn = state.connection
        await conn.retry.call(lambda: conn.control.purge_queue(state.info.url))

    async def delete(self) -> None:
        """Delete the queue itself. The handle declares it again on next use."""
        state = await self._state()
        conn = state.connection
        await conn.retry.call(lambda: conn.control.delete_queue(state.info.url))
        self._declared = None

    # -- sending --------------------------------------------------------------------------------------

    async def send(
        self,
        value: T,
        *,
        delay: int | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> str:
        """Send one message and return its SQS message id.

        Concurrent calls are coalesced into ``SendMessageBatch`` calls; each caller still gets its own
        message id or its own error.

        Args:
            value: the body; encoded per the queue's format (see ``qfan._codec``).
            delay: seconds before the message becomes visible (0-900; standard queues only).
            group_id: the message group (required on FIFO queues; "fair queues" on standard ones).
            dedup_id: FIFO deduplication id (required unless the queue has content-based dedup).
            attributes: up to 9 message attributes.
        """
        state = await self._state()
        entry = self._prepare(state.info, value, delay, group_id, dedup_id, attributes)
        return await state.sends.submit(entry)

    async def send_many(
        self,
        values: Iterable[T],
        *,
        delay: int | None = None,
        group_id: str | None = None,
        dedup_id: Callable[[T], str] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> list[str]:
        """Send many messages in full batches and return their ids, in order.

        Every value is encoded and checked before anything is sent. On a FIFO queue, batches go out one
        after another, so the queue holds the values in iteration order. Raises ``BatchSendError``
        (which says which values were not sent) if any value failed.

        Args:
            dedup_id: a function giving each value's FIFO deduplication id.
        """
        state = await self._state()
        entries = [
            self._prepare(state.info, v, delay, group_id, dedup_id(v) if dedup_id else None, attributes)
            for v in values
        ]
        results: list[str | QfanError] = [""] * len(entries)
        limiter = anyio.CapacityLimiter(1 if self.fifo else _SEND_MANY_CONCURRENCY)

        async def send_chunk(start: int, chunk: list[_Outgoing]) -> None:
            async with limiter:
                results[start : start + len(chunk)] = await self._send_batch(chunk)

        async with anyio.create_task_group() as tg:
            for start, chunk in _chunks(entries, state.info.max_message_size):
                tg.start_soon(send_chunk, start, chunk)
        if any(isinstance(r, QfanError) for r in results):
            raise BatchSendError(results)
        return [r for r in results if isinstance(r, str)]

    def _prepare(
        self,
        info: QueueInfo,
        value: T,
        delay: int | None,
        group_id: str | None,
        dedup_id: str | None,
        attributes: Mapping[str, AttributeValue] | None,
    ) -> _Outgoing:
        if self.fifo:
            if group_id is None:
                raise ConfigError(f"FIFO queue {self.name!r} needs a group_id for every message")
            if dedup_id is None and not info.content_based_dedup:
                raise ConfigError(
                    f"FIFO queue {self.name!r} has no content-based deduplication: give a dedup_id"
                )
            if delay is not None:
                raise ConfigError(
                    f"FIFO queue {self.name!r}: per-message delay is not supported, "
                    "use the queue's delay option"
                )
        elif dedup_id is not None:
            raise ConfigError(f"dedup_id only applies to FIFO queues, not to {self.name!r}")
        if delay is not None and (isinstance(delay, bool) or not 0 <= delay <= 900):
            raise ConfigError(f"delay must be an int between 0 and 900 seconds, got {delay!r}")
        body, content_type = self._encoder.encode(value)
        wire = to_wire(attributes, content_type)
        size = len(body.encode()) + wire_size(wire)
        if size > info.max_message_size:
            raise MessageTooLarge(size, info.max_message_size, self.name)
        return _Outgoing(body, wire, size, delay, group_id, dedup_id)

    async def _send_batch(self, batch: Sequence[_Outgoing]) -> list[str | QfanError]:
        state = await self._state()
        conn = state.connection
        entries = [
            SendEntry(str(i), e.body, e.attributes, e.delay, e.group_id, e.dedup_id)
            for i, e in enumerate(batch)
        ]
        sent, errors = await conn.retry.call_batch(
            "SendMessageBatch", partial(conn.data.send_batch, state.info.url), entries
        )
        results: list[str | QfanError] = [
            QfanError("SendMessageBatch returned no result for this entry") for _ in batch
        ]
        for ok in sent:
            results[int(ok.id)] = _verify_sent(ok, batch[int(ok.id)], self.fifo)
        for entry_id, error in errors.items():
            results[int(entry_id)] = error
        return results

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
        state = await self._state()
        conn = state.connection
        wait_seconds = self.options.wait_seconds if wait is None else wait
        raw = await conn.retry.call(
            lambda: conn.data.receive(
                state.info.url,
                max_messages=max_messages,
                wait_seconds=wait_seconds,
                visibility_timeout=visibility,
            )
        )
        return [Message(m, self._decoder, self) for m in raw]

    def consume(
        self, *, prefetch: int = 10, wait: int | None = None, visibility: int | None = None
    ) -> Consumer[T]:
        """Iterate over messages as they arrive, holding at most ``prefetch`` received messages.

        Use ``async with queue.consume() as messages: async for m in messages: ...`` to give back
        (make visible again) whatever was prefetched but not handed out when the block ends.
        """
        return Consumer(self.receive, prefetch=prefetch, wait=wait, visibility=visibility, ordered=self.fifo)

    # -- settling (used by Message) -------------------------------------------------------------------

    async def delete_receipt(self, receipt_handle: str) -> None:
        """Delete one message by receipt handle (coalesced into DeleteMessageBatch)."""
        await (await self._state()).deletes.submit(receipt_handle)

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Set one message's visibility timeout (coalesced into ChangeMessageVisibilityBatch)."""
        await (await self._state()).visibility.submit((receipt_handle, seconds))

    async def _delete_batch(self, handles: Sequence[str]) -> list[QfanError | None]:
        state = await self._state()
        conn = state.connection
        entries = [ReceiptEntry(str(i), handle) for i, handle in enumerate(handles)]
        _, errors = await conn.retry.call_batch(
            "DeleteMessageBatch", partial(conn.data.delete_batch, state.info.url), entries
        )
        return [errors.get(str(i)) for i in range(len(handles))]

    async def _visibility_batch(self, changes: Sequence[tuple[str, int]]) -> list[QfanError | None]:
        state = await self._state()
        conn = state.connection
        entries = [VisibilityEntry(str(i), h, s) for i, (h, s) in enumerate(changes)]
        _, errors = await conn.retry.call_batch(
            "ChangeMessageVisibilityBatch",
            partial(conn.data.change_visibility_batch, state.info.url),
            entries,
        )
        return [errors.get(str(i)) for i in range(len(changes))]


def _verify_sent(sent: SentMessage, entry: _Outgoing, fifo: bool) -> str | QfanError:
    """The message id, or a ChecksumMismatch when SQS stored something else than was sent.

    On a FIFO queue a send deduplicated against an earlier message (same dedup id, other content) may be
    answered with the earlier message's id and digests: that is deduplication, not corruption.
    """
    expected_body = md5_of_body(entry.body)
    expected_attributes = md5_of_attributes(entry.attributes)
    body_ok = sent.md5_of_body == expected_body
    attributes_ok = sent.md5_of_attributes is None or sent.md5_of_attributes == expected_attributes
    if body_ok and attributes_ok:
        return sent.message_id
    if fifo:
        logger.debug("send to FIFO queue deduplicated into message %s", sent.message_id)
        return sent.message_id
    return ChecksumMismatch(
        f"message {sent.message_id}: SQS reported digests body={sent.md5_of_body} "
        f"attributes={sent.md5_of_attributes}, expected body={expected_body} "
        f"attributes={expected_attributes}"
    )


def _chunks(entries: list[_Outgoing], max_bytes: int) -> Iterable[tuple[int, list[_Outgoing]]]:
    """Split entries into batches of at most 10 entries and ``max_bytes`` in total."""
    start, chunk, size = 0, list[_Outgoing](), 0
    for index, entry in enumerate(entries):
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + entry.size > max_bytes):
            yield start, chunk
            start, chunk, size = index, [], 0
        chunk.append(entry)
        size += entry.size
    if chunk:
        yield start, chunk
