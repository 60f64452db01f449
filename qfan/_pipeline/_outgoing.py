"""Outgoing messages: encoded, validated and measured before they join a batch; checked after sending."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from .._exceptions import ChecksumMismatch, ConfigError, MessageTooLarge, QfanError
from .._transport import SentMessage, WireAttribute, WireAttributes, md5_of_attributes, md5_of_body
from .._wire._attributes import TRACE_HEADER, AttributeValue, to_wire, wire_size
from .._wire._codec import Encoder
from .._wire._limits import utf8_size
from .._wire._pointer import PayloadLocation
from ._batching import MAX_BATCH_ENTRIES
from ._payloads import Payloads

logger = logging.getLogger("qfan")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for SendMessageBatch; ``size`` is what counts towards SQS's limits.

    ``payload`` is where the real body went when ``body`` is an offload pointer; ``subject`` is an SNS
    publish's subject; ``system_attributes`` SQS's ``AWSTraceHeader`` when there is one.
    """

    body: str
    attributes: WireAttributes
    size: int
    delay: int | None
    group_id: str | None
    dedup_id: str | None
    payload: PayloadLocation | None = None
    subject: str | None = None
    system_attributes: WireAttributes | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """What outgoing checks need to know about a queue or topic.

    Attributes:
        name: for error messages.
        fifo: FIFO queue or topic.
        content_based_dedup: a FIFO destination that derives dedup ids from bodies.
        max_size: the size limit of one message (body + attributes).
        delay_allowed: per-message delays (standard SQS queues only).
        system: ``aws_sqs`` for a queue, ``aws_sns`` for a topic (OpenTelemetry's ``messaging.system``).
    """

    name: str
    fifo: bool
    content_based_dedup: bool
    max_size: int
    delay_allowed: bool = True
    system: str = "aws_sqs"


def prepare(
    encoder: Encoder,
    destination: Destination,
    value: object,
    *,
    delay: int | None,
    group_id: str | None,
    dedup_id: str | None,
    attributes: Mapping[str, AttributeValue] | None,
    check_size: bool = True,
) -> Outgoing:
    """Encode ``value`` and check everything SQS or SNS would reject, before any request is made.

    With ``check_size`` false the size is left to :func:`fit`, which may offload the body first.
    """
    name = destination.name
    if destination.fifo:
        if group_id is None:
            raise ConfigError(f"FIFO {name!r} needs a group_id for every message")
        if dedup_id is None and not destination.content_based_dedup:
            raise ConfigError(f"FIFO {name!r} has no content-based deduplication: give a dedup_id")
    elif dedup_id is not None:
        raise ConfigError(f"dedup_id only applies to FIFO queues and topics, not to {name!r}")
    if delay is not None:
        if destination.fifo or not destination.delay_allowed:
            raise ConfigError(
                f"{name!r}: per-message delay is not supported here, use the queue's delay option"
            )
        if isinstance(delay, bool) or not 0 <= delay <= 900:
            raise ConfigError(f"delay must be an int between 0 and 900 seconds, got {delay!r}")
    body, content_type = encoder.encode(value)
    if attributes and TRACE_HEADER in attributes and destination.system == "aws_sqs":
        attributes = dict(attributes)
        system = to_system(attributes.pop(TRACE_HEADER))
        wire = to_wire(attributes, content_type)
        size = utf8_size(body) + wire_size(wire) + wire_size(system or {})
        entry = Outgoing(body, wire, size, delay, group_id, dedup_id, system_attributes=system)
    else:
        wire = to_wire(attributes, content_type)
        entry = Outgoing(body, wire, utf8_size(body) + wire_size(wire), delay, group_id, dedup_id)
    if check_size:
        _check_size(entry, destination)
    return entry


async def fit(entry: Outgoing, payloads: Payloads, destination: Destination) -> Outgoing:
    """Offload the body to S3 if the policy wants it, then check that what SQS gets fits the queue."""
    if not payloads.wants(entry.size):
        _check_size(entry, destination)
        return entry
    offloaded = payloads.offload(entry.body, entry.attributes)
    size = utf8_size(offloaded.body) + wire_size(offloaded.attributes)
    dedup_id = entry.dedup_id
    if dedup_id is None and destination.content_based_dedup:
        # Each pointer names a fresh key, so SQS's hash of the pointer would never match: hash the real
        # body instead, as content-based deduplication would have.
        dedup_id = hashlib.sha256(entry.body.encode()).hexdigest()
    entry = replace(
        entry,
        body=offloaded.body,
        attributes=offloaded.attributes,
        size=size,
        dedup_id=dedup_id,
        payload=offloaded.location,
    )
    _check_size(entry, destination)  # before uploading: attributes alone may be too large
    await payloads.upload(offloaded)
    return entry


def to_system(trace_header: AttributeValue | None) -> WireAttributes | None:
    """``AWSTraceHeader`` as SQS's system attribute (``None`` for no header)."""
    if trace_header is None:
        return None
    if not isinstance(trace_header, str):
        raise ConfigError(f"{TRACE_HEADER} must be a string, got {type(trace_header).__name__}")
    return {TRACE_HEADER: WireAttribute("String", string_value=trace_header)}


def _check_size(entry: Outgoing, destination: Destination) -> None:
    if entry.size > destination.max_size:
        raise MessageTooLarge(entry.size, destination.max_size, destination.name)


def verify_sent(sent: SentMessage, entry: Outgoing, fifo: bool) -> str | QfanError:
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


def chunks(entries: list[Outgoing], max_bytes: int) -> Iterator[tuple[int, list[Outgoing]]]:
    """Split entries into batches of at most 10 entries and ``max_bytes`` in total."""
    start, chunk, size = 0, list[Outgoing](), 0
    for index, entry in enumerate(entries):
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + entry.size > max_bytes):
            yield start, chunk
            start, chunk, size = index, [], 0
        chunk.append(entry)
        size += entry.size
    if chunk:
        yield start, chunk
