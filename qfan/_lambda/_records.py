"""Lambda's event records, both ways: the shapes Lambda's event sources deliver, and qfan's received messages.

An SQS record (``eventSource: aws:sqs``) is what ReceiveMessage returned, renamed: ``messageId``,
``receiptHandle``, ``body``, ``attributes`` (the system attributes: ``ApproximateReceiveCount``,
``SentTimestamp``, ``MessageGroupId``, ``AWSTraceHeader``...), ``messageAttributes`` (``dataType`` with a
``stringValue`` or a base64 ``binaryValue``), ``md5OfBody``, ``eventSourceARN``, ``awsRegion``. It becomes
the same :class:`~qfan._transport.ReceivedMessage` a worker's receive gives the inbound pipeline, so MD5
checks, envelopes, offloaded payloads and decoding are the pipeline's, not re-done here.

An SNS record (``EventSource: aws:sns``) carries the notification in SNS's own envelope shape, so it becomes
a received message whose body is that envelope: the pipeline's unwrapping turns it into the published body
and attributes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from .._exceptions import ConfigError
from .._transport import ReceivedMessage, WireAttribute

SQS_SOURCE = "aws:sqs"
SNS_SOURCE = "aws:sns"

_NOTIFICATION_FIELDS = ("Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp")


def record_source(record: Mapping[str, Any]) -> str:
    """``aws:sqs`` or ``aws:sns`` (SQS spells the key ``eventSource``, SNS ``EventSource``)."""
    source = record.get("eventSource") or record.get("EventSource")
    if source not in (SQS_SOURCE, SNS_SOURCE):
        raise ConfigError(f"not an SQS or SNS event record (eventSource {source!r})")
    return str(source)


def queue_name_of(arn: str) -> str:
    """The queue's name from its ARN (``arn:aws:sqs:region:account:name``)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise ConfigError(f"not an SQS queue ARN: {arn!r}")
    return parts[5]


def from_sqs_record(record: Mapping[str, Any]) -> ReceivedMessage:
    """The message an SQS event record holds, as ReceiveMessage would have returned it."""
    try:
        attributes = {
            name: _wire_attribute(value) for name, value in (record.get("messageAttributes") or {}).items()
        }
        return ReceivedMessage(
            message_id=str(record["messageId"]),
            receipt_handle=str(record["receiptHandle"]),
            body=str(record.get("body", "")),
            attributes=attributes,
            system_attributes={str(k): str(v) for k, v in (record.get("attributes") or {}).items()},
            md5_of_body=record.get("md5OfBody"),
            md5_of_attributes=record.get("md5OfMessageAttributes"),
        )
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError) as exc:
        raise ConfigError(f"malformed SQS event record: {type(exc).__name__}: {exc}") from exc


def _wire_attribute(value: Mapping[str, Any]) -> WireAttribute:
    data_type = str(value.get("dataType") or value.get("DataType"))
    binary = value.get("binaryValue")
    if binary is not None:
        return WireAttribute(data_type, binary_value=base64.b64decode(binary, validate=True))
    return WireAttribute(data_type, string_value=value.get("stringValue"))


def sqs_record(message: ReceivedMessage, queue_arn: str, region: str) -> dict[str, Any]:
    """The event record Lambda's SQS event source builds from a received message (documented shape)."""
    attributes: dict[str, dict[str, Any]] = {}
    for name, value in message.attributes.items():
        entry: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.data_type}
        if value.binary_value is not None:
            entry["binaryValue"] = base64.b64encode(value.binary_value).decode()
        else:
            entry["stringValue"] = value.string_value
        attributes[name] = entry
    record: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": dict(message.system_attributes),
        "messageAttributes": attributes,
        "md5OfBody": message.md5_of_body,
        "eventSource": SQS_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.md5_of_attributes is not None:
        record["md5OfMessageAttributes"] = message.md5_of_attributes
    return record


def sqs_event(messages: Sequence[ReceivedMessage], queue_arn: str, region: str) -> dict[str, Any]:
    """A whole SQS event: ``{"Records": [...]}``."""
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def from_sns_record(record: Mapping[str, Any]) -> tuple[str, ReceivedMessage]:
    """The topic ARN of an SNS event record, and its notification as a message holding SNS's envelope."""
    try:
        sns = record["Sns"]
        topic_arn = str(sns["TopicArn"])
        envelope: dict[str, Any] = {n: sns[n] for n in _NOTIFICATION_FIELDS if sns.get(n) is not None}
        envelope["MessageAttributes"] = sns.get("MessageAttributes") or {}
        return topic_arn, ReceivedMessage(
            message_id=str(sns["MessageId"]),
            receipt_handle="",
            body=msgspec.json.encode(envelope).decode(),
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"malformed SNS event record: {type(exc).__name__}: {exc}") from exc
