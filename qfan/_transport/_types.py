"""Wire-level records exchanged with the transport: what goes into and comes out of the hot SQS calls.

They are deliberately plain (msgspec structs, strings and bytes) and carry the SQS JSON protocol's field names
(``rename``), so the lean transport encodes and decodes them straight from the wire without going through
botocore's dictionaries; in Python they keep their own names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypedDict, TypeVar

import msgspec

S = TypeVar("S")


class WireAttribute(
    msgspec.Struct,
    frozen=True,
    gc=False,
    omit_defaults=True,
    rename={"data_type": "DataType", "string_value": "StringValue", "binary_value": "BinaryValue"},
):
    """One SQS message attribute as it travels: ``DataType`` plus a string or binary value."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None


WireAttributes = Mapping[str, WireAttribute]


class SendEntry(
    msgspec.Struct,
    frozen=True,
    gc=False,
    omit_defaults=True,
    rename={
        "id": "Id",
        "body": "MessageBody",
        "attributes": "MessageAttributes",
        "delay_seconds": "DelaySeconds",
        "group_id": "MessageGroupId",
        "dedup_id": "MessageDeduplicationId",
        "system_attributes": "MessageSystemAttributes",
    },
):
    """One entry of a SendMessageBatch call (``system_attributes``: SQS's only one, ``AWSTraceHeader``)."""

    id: str
    body: str
    attributes: WireAttributes = {}
    delay_seconds: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    system_attributes: WireAttributes = {}


class SentMessage(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={
        "id": "Id",
        "message_id": "MessageId",
        "md5_of_body": "MD5OfMessageBody",
        "md5_of_attributes": "MD5OfMessageAttributes",
        "sequence_number": "SequenceNumber",
    },
):
    """A successful SendMessageBatch entry."""

    id: str
    message_id: str
    md5_of_body: str
    md5_of_attributes: str | None = None
    sequence_number: str | None = None


class ReceiptEntry(
    msgspec.Struct, frozen=True, gc=False, rename={"id": "Id", "receipt_handle": "ReceiptHandle"}
):
    """One entry of a DeleteMessageBatch call."""

    id: str
    receipt_handle: str


class VisibilityEntry(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={"id": "Id", "receipt_handle": "ReceiptHandle", "visibility_timeout": "VisibilityTimeout"},
):
    """One entry of a ChangeMessageVisibilityBatch call."""

    id: str
    receipt_handle: str
    visibility_timeout: int


class EntryFailure(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={"id": "Id", "code": "Code", "message": "Message", "sender_fault": "SenderFault"},
):
    """A failed batch entry, as SQS reports it."""

    id: str
    code: str = "Unknown"
    message: str = ""
    sender_fault: bool = True


class BatchResult(
    msgspec.Struct, Generic[S], frozen=True, gc=False, rename={"succeeded": "Successful", "failed": "Failed"}
):
    """The per-entry outcome of a batch call: what succeeded (ids, or sent messages) and the failures."""

    succeeded: list[S] = []
    failed: list[EntryFailure] = []


class ReceivedMessage(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={
        "message_id": "MessageId",
        "receipt_handle": "ReceiptHandle",
        "body": "Body",
        "attributes": "MessageAttributes",
        "system_attributes": "Attributes",
        "md5_of_body": "MD5OfBody",
        "md5_of_attributes": "MD5OfMessageAttributes",
    },
):
    """A message as ReceiveMessage returned it, with the digests SQS computed (verified above the seam)."""

    message_id: str
    receipt_handle: str
    body: str = ""
    attributes: WireAttributes = {}
    system_attributes: Mapping[str, str] = {}
    md5_of_body: str | None = None
    md5_of_attributes: str | None = None


ItemValue = str | int | float | bytes
"""A DynamoDB attribute value as it crosses the seam (the plane converts to and from DynamoDB's types)."""
Item = Mapping[str, ItemValue]
"""A DynamoDB item (or key): attribute name -> value."""


class PutOptions(TypedDict, total=False):
    """PutObject's options: ``content_type``, and ``encryption`` (the ``ServerSideEncryption`` and
    ``SSEKMSKeyId`` parameters)."""

    content_type: str | None
    encryption: Mapping[str, str] | None


class StoredObject(msgspec.Struct, frozen=True, gc=False):
    """An object read from S3, or only its size when it exceeded the read limit.

    Attributes:
        size: the object's size in bytes, as S3 reported it.
        data: the object's bytes; ``None`` when ``size`` exceeded the limit and nothing was read.
        content_type: the object's ``Content-Type``.
    """

    size: int
    data: bytes | None
    content_type: str | None


class MoveTask(msgspec.Struct, frozen=True, gc=False):
    """One of SQS's message move tasks, as ``ListMessageMoveTasks`` reports it.

    Attributes:
        status: ``RUNNING``, ``COMPLETED``, ``CANCELLING``, ``CANCELLED`` or ``FAILED``.
        handle: the task handle (SQS reports it for running tasks only).
        moved: messages moved so far (approximate).
        to_move: messages the task set out to move (approximate), when known.
        failure_reason: why a ``FAILED`` task failed.
        started_at: when it started, in milliseconds since the epoch (0 when not reported).
    """

    status: str
    handle: str | None = None
    moved: int = 0
    to_move: int | None = None
    failure_reason: str | None = None
    started_at: int = 0


LifecycleChange = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
"""Turns a bucket's lifecycle rules (as S3 spells them) into the rules it should have."""


class PublishEntry(msgspec.Struct, frozen=True, gc=False):
    """One entry of an SNS PublishBatch call."""

    id: str
    body: str
    attributes: WireAttributes
    subject: str | None = None
    group_id: str | None = None
    dedup_id: str | None = None


class PublishedMessage(msgspec.Struct, frozen=True, gc=False):
    """A successful PublishBatch entry."""

    id: str
    message_id: str
    sequence_number: str | None = None
