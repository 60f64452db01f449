"""A received message: its decoded body, metadata, and the ways to settle it (ack, nack, extend)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from ._attributes import AttributeValue, from_wire
from ._codec import Decoder
from ._envelope import SnsEnvelope, looks_like_envelope, unwrap
from ._exceptions import ChecksumMismatch, ConfigError, DecodeError, MessageError
from ._transport import ReceivedMessage, WireAttributes, corruption_of

T = TypeVar("T")

_UNSET = object()
MAX_VISIBILITY = 43_200


class Settler(Protocol):
    """What a message needs from its queue to be settled (batched deletes and visibility changes)."""

    @property
    def name(self) -> str: ...

    async def delete_receipt(self, receipt_handle: str) -> None: ...

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None: ...


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

    Attributes:
        message_id: the SQS message id.
        receipt_handle: the handle that settles this delivery.
        raw_body: the body as it came off the queue (an SNS envelope stays wrapped here).
        attributes: the sender's message attributes (without qfan's content-type attribute).
        sns: topic ARN, SNS message id, timestamp and subject when SNS delivered the message non-raw.
        content_type: the body's content type (``None`` when the sender did not say).
        receive_count: how many times SQS has delivered this message (1 on first delivery).
        sent_at: when SQS accepted the message.
        first_received_at: when SQS first delivered it.
        group_id: the FIFO (or fair queue) message group id.
        sequence_number: the FIFO sequence number.
        dedup_id: the FIFO deduplication id.
        queue: the name of the queue it came from.
    """

    __slots__ = (
        "_body",
        "_decoder",
        "_payload",
        "_problem",
        "_settled",
        "_settler",
        "_wire_attributes",
        "attributes",
        "content_type",
        "dedup_id",
        "first_received_at",
        "group_id",
        "message_id",
        "queue",
        "raw_body",
        "receipt_handle",
        "receive_count",
        "sent_at",
        "sequence_number",
        "sns",
    )

    def __init__(self, raw: ReceivedMessage, decoder: Decoder[T], settler: Settler) -> None:
        system = raw.system_attributes
        self.message_id = raw.message_id
        self.receipt_handle = raw.receipt_handle
        self.raw_body = raw.body
        self.sns: SnsEnvelope | None = None
        self._payload = raw.body
        self._problem: MessageError | None = None
        corruption = corruption_of(raw.body, raw.md5_of_body, raw.attributes, raw.md5_of_attributes)
        attributes = raw.attributes
        if corruption is not None:
            self._problem = ChecksumMismatch(f"message {raw.message_id}: {corruption}")
        elif looks_like_envelope(raw.body, raw.attributes):
            try:
                unwrapped = unwrap(raw.body)
            except DecodeError as exc:
                self._problem = exc
            else:
                if unwrapped is not None:
                    self._payload, attributes, self.sns = unwrapped
        self.attributes: dict[str, AttributeValue]
        self.attributes, self.content_type = from_wire(attributes)
        self.receive_count = int(system.get("ApproximateReceiveCount", "1"))
        self.sent_at = _timestamp(system, "SentTimestamp")
        self.first_received_at = _timestamp(system, "ApproximateFirstReceiveTimestamp")
        self.group_id = system.get("MessageGroupId")
        self.sequence_number = system.get("SequenceNumber")
        self.dedup_id = system.get("MessageDeduplicationId")
        self.queue = settler.name
        self._wire_attributes = raw.attributes
        self._decoder = decoder
        self._settler = settler
        self._body: object = _UNSET
        self._settled = False

    @property
    def body(self) -> T:
        """The decoded body (unwrapped from an SNS envelope when SNS delivered it non-raw).

        Raises ``DecodeError`` (undecodable body, malformed envelope) or ``ChecksumMismatch`` for a bad
        message; other messages of the same receive are unaffected.
        """
        if self._problem is not None:
            raise self._problem
        if self._body is _UNSET:
            self._body = self._decoder.decode(self._payload, self.content_type)
        return self._body  # type: ignore[return-value]

    @property
    def settled(self) -> bool:
        """Whether :meth:`ack` has deleted this message."""
        return self._settled

    async def ack(self) -> None:
        """Delete the message: it was handled. A second call does nothing.

        Raises ``ReceiptHandleInvalid`` when SQS reports the handle expired (the message may be redelivered).
        """
        if self._settled:
            return
        await self._settler.delete_receipt(self.receipt_handle)
        self._settled = True

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

    @property
    def wire_attributes(self) -> WireAttributes:
        """The attributes exactly as they came off the wire (qfan's content-type attribute included)."""
        return self._wire_attributes

    def __repr__(self) -> str:
        return (
            f"<Message {self.message_id} from {self.queue!r} receive_count={self.receive_count}"
            f"{f' group={self.group_id!r}' if self.group_id else ''}>"
        )
