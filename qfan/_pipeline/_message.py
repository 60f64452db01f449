"""A received message: its decoded body, metadata, and the ways to settle it (ack, nack, extend)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from .._exceptions import ChecksumMismatch, ConfigError, DecodeError, MessageError, PayloadRefused, QfanError
from .._transport import ReceivedMessage, WireAttributes, corruption_of
from .._wire._attributes import AttributeValue, from_wire
from .._wire._codec import Decoder
from .._wire._envelope import AcceptedTopics, SnsEnvelope, looks_like_envelope, unwrap
from .._wire._limits import MAX_VISIBILITY
from .._wire._pointer import PayloadLocation
from ._batching import Finished
from ._loop import spawn
from ._payloads import Fetched

T = TypeVar("T")

_UNSET = object()


class Settler(Protocol):
    """What a message needs from its queue to be settled (batched deletes and visibility changes)."""

    @property
    def name(self) -> str: ...

    async def delete_receipt(
        self, receipt_handle: str, *, payload: PayloadLocation | None = None
    ) -> None: ...

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None: ...

    def delete_receipt_soon(self, handle: str, payload: PayloadLocation | None, done: Finished) -> None:
        """Like ``delete_receipt``, without waiting: ``done`` gets ``None`` or the error once it is over."""
        ...


class AwaitedSettler(ABC):
    """A settler whose deletes are plain awaited calls: ``delete_receipt_soon`` runs one in a task."""

    @abstractmethod
    async def delete_receipt(self, receipt_handle: str, *, payload: PayloadLocation | None = None) -> None:
        """Delete one message by receipt handle (then its payload, where that applies)."""

    def delete_receipt_soon(self, handle: str, payload: PayloadLocation | None, done: Finished) -> None:
        """Run :meth:`delete_receipt` in a task of its own; ``done`` gets ``None`` or its error."""
        spawn(self._delete_then(handle, payload, done))

    async def _delete_then(
        self, receipt_handle: str, payload: PayloadLocation | None, done: Finished
    ) -> None:
        try:
            await self.delete_receipt(receipt_handle, payload=payload)
        except QfanError as exc:
            done(exc)
        except Exception as exc:  # whatever went wrong, the caller hears of it
            error = QfanError(f"delete failed unexpectedly: {exc!r}")
            error.__cause__ = exc
            done(error)
        else:
            done(None)


def _timestamp(system: Mapping[str, str], name: str) -> datetime | None:
    raw = system.get(name)
    if raw is None:
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    except ValueError:
        return None


class Message(Generic[T]):
    """One received SQS message.

    The body is decoded on first access of :attr:`body`, so one undecodable message never prevents the
    others in the same receive from being handled; :attr:`raw_body` is always available.

    An offloaded message (its body stored in S3, see :class:`qfan.Offload`) was fetched when it was
    received: :attr:`raw_body` is the real body and :attr:`payload` says where it is stored. If the payload
    could not be had, :attr:`raw_body` is the pointer and :attr:`body` raises the ``PayloadError``.

    Attributes:
        message_id: the SQS message id.
        receipt_handle: the handle that settles this delivery.
        raw_body: the body as it came off the queue (an SNS envelope stays wrapped here; an offloaded body
            is the one fetched from S3).
        payload: where an offloaded message's body is stored (``None`` when it was not offloaded).
        attributes: the sender's message attributes (without qfan's content-type and offload markers).
        sns: topic ARN, SNS message id, timestamp and subject when SNS delivered the message non-raw.
        content_type: the body's content type (``None`` when the sender did not say).
        receive_count: how many times SQS has delivered this message (1 on first delivery).
        sent_at: when SQS accepted the message.
        first_received_at: when SQS first delivered it.
        group_id: the FIFO (or fair queue) message group id.
        sequence_number: the FIFO sequence number.
        dedup_id: the FIFO deduplication id.
        queue: the name of the queue it came from.
        trace_header: the ``AWSTraceHeader`` system attribute (X-Ray trace context), when SQS has one.
    """

    __slots__ = (
        "_body",
        "_decoder",
        "_owns_payload",
        "_problem",
        "_settled",
        "_settler",
        "_system",
        "_text",
        "_wire_attributes",
        "_wire_body",
        "attributes",
        "content_type",
        "dedup_id",
        "group_id",
        "message_id",
        "payload",
        "queue",
        "raw_body",
        "receipt_handle",
        "receive_count",
        "sequence_number",
        "sns",
        "trace_header",
    )

    def __init__(
        self,
        raw: ReceivedMessage,
        decoder: Decoder[T],
        settler: Settler,
        fetched: Fetched | None = None,
        topics: AcceptedTopics | None = None,
    ) -> None:
        system = raw.system_attributes
        self.message_id = raw.message_id
        self.receipt_handle = raw.receipt_handle
        self.raw_body = raw.body
        self.sns: SnsEnvelope | None = None
        self.payload: PayloadLocation | None = None
        self._owns_payload = True
        self._wire_body = raw.body
        self._text = raw.body  # what the decoder gets: unwrapped from an envelope, fetched from S3
        self._problem: MessageError | None = None
        corruption = corruption_of(raw.body, raw.md5_of_body, raw.attributes, raw.md5_of_attributes)
        attributes = raw.attributes
        if corruption is not None:
            self._problem = ChecksumMismatch(f"message {raw.message_id}: {corruption}")
        elif looks_like_envelope(raw.body, raw.attributes):
            try:
                unwrapped = unwrap(raw.body, topics)
            except DecodeError as exc:
                self._problem = exc
            else:
                if unwrapped is not None:
                    # SNS itself sets no SQS attributes on an envelope; any there were added on the way
                    # (a dead-letter copy's reason) and are kept beside the published ones.
                    self._text, published, self.sns = unwrapped
                    attributes = {**published, **raw.attributes} if raw.attributes else published
        self.attributes: dict[str, AttributeValue]
        self.attributes, self.content_type = from_wire(attributes)
        if fetched is not None and corruption is None:  # offloaded, perhaps inside an SNS envelope
            self.payload, self._problem = fetched.location, fetched.error
            # A refused pointer names an object this queue may not touch: acking must not delete it.
            self._owns_payload = not isinstance(fetched.error, PayloadRefused)
            if fetched.body is not None:
                self.raw_body = self._text = fetched.body
                self.content_type = fetched.content_type
        self.receive_count = int(system.get("ApproximateReceiveCount", "1"))
        self._system = system  # the timestamps are parsed when asked for
        self.group_id = system.get("MessageGroupId")
        self.sequence_number = system.get("SequenceNumber")
        self.dedup_id = system.get("MessageDeduplicationId")
        self.trace_header = system.get("AWSTraceHeader")
        self.queue = settler.name
        self._wire_attributes = raw.attributes
        self._decoder = decoder
        self._settler = settler
        self._body: object = _UNSET
        self._settled = False

    @property
    def sent_at(self) -> datetime | None:
        """When SQS accepted the message."""
        return _timestamp(self._system, "SentTimestamp")

    @property
    def first_received_at(self) -> datetime | None:
        """When SQS first delivered it."""
        return _timestamp(self._system, "ApproximateFirstReceiveTimestamp")

    @property
    def body(self) -> T:
        """The decoded body (unwrapped from an SNS envelope when SNS delivered it non-raw).

        Raises ``DecodeError`` (undecodable body, malformed envelope), ``ChecksumMismatch`` or
        ``PayloadError`` (an offloaded body that could not be had) for a bad message; other messages of the
        same receive are unaffected.
        """
        if self._problem is not None:
            raise self._problem
        if self._body is _UNSET:
            self._body = self._decoder.decode(self._text, self.content_type)
        return self._body  # type: ignore[return-value]

    @property
    def settled(self) -> bool:
        """Whether :meth:`ack` has deleted this message."""
        return self._settled

    async def ack(self) -> None:
        """Delete the message: it was handled. A second call does nothing.

        Raises ``ReceiptHandleInvalid`` when SQS reports the handle expired (the message may be redelivered).
        An offloaded message's payload is deleted after the message, if its queue's policy says so (and
        :meth:`retain_payload` was not called).
        """
        if self._settled:
            return
        payload = self.payload if self._owns_payload else None
        await self._settler.delete_receipt(self.receipt_handle, payload=payload)
        self._settled = True

    def ack_soon(self, done: Finished) -> None:
        """:meth:`ack` without waiting for it: the delete joins the queue's next batch, and ``done`` gets
        ``None`` once the message is deleted (or was already), or the error that kept it from being deleted
        (the message then comes back after its visibility timeout). For a caller that must not hold anything
        while the delete is in flight (a worker's slot); ``done`` runs on the event loop and must not block.
        """
        if self._settled:
            done(None)
            return

        def deleted(error: QfanError | None) -> None:
            if error is None:
                self._settled = True
            done(error)

        payload = self.payload if self._owns_payload else None
        self._settler.delete_receipt_soon(self.receipt_handle, payload, deleted)

    async def nack(self, delay: int = 0) -> None:
        """Give the message back: it becomes visible again after ``delay`` seconds (0 = now)."""
        await self._change_visibility("delay", delay)

    async def extend(self, seconds: int) -> None:
        """Keep the message invisible for ``seconds`` more, counted from now (at most 12 h in total)."""
        await self._change_visibility("seconds", seconds)

    async def _change_visibility(self, what: str, seconds: int) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= MAX_VISIBILITY:
            raise ConfigError(f"{what} must be an int between 0 and {MAX_VISIBILITY}, got {seconds!r}")
        if self._settled:
            raise ConfigError(f"message {self.message_id} was already acked")
        await self._settler.change_visibility(self.receipt_handle, seconds)

    def retain_payload(self) -> None:
        """Keep an offloaded message's S3 payload when the message is acked.

        For when a copy of the message (its pointer) lives on elsewhere, e.g. forwarded to a dead-letter
        queue: the copy owns the payload now. :meth:`qfan.Queue.forward` calls this itself.
        """
        self._owns_payload = False

    @property
    def wire_body(self) -> str:
        """The body exactly as it came off the wire: for an offloaded message, the S3 pointer."""
        return self._wire_body

    @property
    def wire_attributes(self) -> WireAttributes:
        """The attributes exactly as they came off the wire (qfan's content-type attribute included)."""
        return self._wire_attributes

    def __repr__(self) -> str:
        return (
            f"<Message {self.message_id} from {self.queue!r} receive_count={self.receive_count}"
            f"{f' group={self.group_id!r}' if self.group_id else ''}>"
        )
