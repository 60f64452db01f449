"""SNS envelopes: a non-raw SNS delivery wraps the published message in JSON; qfan unwraps it.

The envelope (``Type``, ``MessageId``, ``TopicArn``, ``Message``, ``MessageAttributes`` {name: {Type, Value}},
``Timestamp``, ``Subject``…) becomes the published body and attributes again, and the SNS metadata stays
available as :class:`SnsEnvelope`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import msgspec

from ._codec import CONTENT_TYPE
from ._exceptions import DecodeError
from ._transport import WireAttribute, WireAttributes


class SnsEnvelope(msgspec.Struct, frozen=True):
    """Where an SNS-delivered message came from.

    Attributes:
        topic_arn: the topic it was published to.
        message_id: SNS's message id (not the SQS one).
        timestamp: when SNS accepted it.
        subject: the ``Subject`` given to ``publish``, if any.
    """

    topic_arn: str
    message_id: str
    timestamp: datetime | None = None
    subject: str | None = None


class _Attribute(msgspec.Struct):
    Type: str
    Value: str


class _Envelope(msgspec.Struct):
    Type: str
    MessageId: str
    TopicArn: str
    Message: str
    Timestamp: datetime | None = None
    Subject: str | None = None
    MessageAttributes: dict[str, _Attribute] = {}


_decoder = msgspec.json.Decoder(_Envelope)


def looks_like_envelope(body: str, attributes: WireAttributes) -> bool:
    """A cheap test: SNS puts no SQS attributes on a non-raw delivery, and the body names its topic."""
    return CONTENT_TYPE not in attributes and body.startswith("{") and '"TopicArn"' in body


def unwrap(body: str) -> tuple[str, dict[str, WireAttribute], SnsEnvelope] | None:
    """The published body, its attributes and the SNS metadata; ``None`` when ``body`` is no envelope.

    Raises ``DecodeError`` for a body that claims to be an SNS notification but is malformed.
    """
    try:
        claimed: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(claimed, dict) or claimed.get("Type") != "Notification":
        return None
    try:
        envelope = _decoder.decode(body)
        attributes = {name: _to_wire(a) for name, a in envelope.MessageAttributes.items()}
    except (msgspec.ValidationError, binascii.Error, ValueError) as exc:
        raise DecodeError(f"malformed SNS envelope: {exc}", raw_body=body, content_type=None) from exc
    return (
        envelope.Message,
        attributes,
        SnsEnvelope(envelope.TopicArn, envelope.MessageId, envelope.Timestamp, envelope.Subject),
    )


def _to_wire(attribute: _Attribute) -> WireAttribute:
    if attribute.Type.startswith("Binary"):
        return WireAttribute(attribute.Type, binary_value=base64.b64decode(attribute.Value, validate=True))
    return WireAttribute(attribute.Type, string_value=attribute.Value)
