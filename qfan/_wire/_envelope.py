"""SNS envelopes: a non-raw SNS delivery wraps the published message in JSON; qfan unwraps it.

The envelope (``Type``, ``MessageId``, ``TopicArn``, ``Message``, ``MessageAttributes`` {name: {Type, Value}},
``Timestamp``, ``Subject``…) becomes the published body and attributes again, and the SNS metadata stays
available as :class:`SnsEnvelope`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from .._exceptions import DecodeError, EnvelopeRefused
from .._transport import WireAttribute, WireAttributes
from ._codec import CONTENT_TYPE


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


class AcceptedTopics:
    """The topics whose SNS envelopes a queue unwraps; any other envelope is refused.

    Each entry is a topic ARN (matched exactly) or a topic name, matched by an ARN of that name in the
    queue's own region and account (SNS delivers to a queue from its own region unless subscribed across
    regions; give the ARN then).

    Args:
        entries: topic names or ARNs.
        queue_arn: the queue's ARN, for its region and account.
    """

    __slots__ = ("_account", "_arns", "_names", "_region")

    def __init__(self, entries: Iterable[str], queue_arn: str) -> None:
        parts = queue_arn.split(":")
        self._region, self._account = (parts[3], parts[4]) if len(parts) == 6 else ("", "")
        entries = list(entries)
        self._arns = frozenset(e for e in entries if e.startswith("arn:"))
        self._names = frozenset(e for e in entries if not e.startswith("arn:"))

    def refusal(self, topic_arn: str) -> str | None:
        """Why an envelope claiming ``topic_arn`` is refused, or ``None`` when it is accepted."""
        if topic_arn in self._arns:
            return None
        parts = topic_arn.split(":")
        own_name = len(parts) == 6 and parts[0] == "arn" and parts[2] == "sns" and parts[5] in self._names
        if own_name and (parts[3], parts[4]) == (self._region, self._account):
            return None
        accepted = sorted(self._arns | self._names)
        return (
            f"it claims topic {topic_arn[:300]!r}, not one the queue is subscribed to ({', '.join(accepted)})"
        )


def looks_like_envelope(body: str, attributes: WireAttributes) -> bool:
    """A cheap test: SNS puts no SQS attributes on a non-raw delivery, and the body names its topic."""
    return CONTENT_TYPE not in attributes and body.startswith("{") and '"TopicArn"' in body


def unwrap(
    body: str, topics: AcceptedTopics | None = None
) -> tuple[str, dict[str, WireAttribute], SnsEnvelope] | None:
    """The published body, its attributes and the SNS metadata; ``None`` when ``body`` is no envelope.

    Raises ``DecodeError`` for a body that claims to be an SNS notification but is malformed, and
    ``EnvelopeRefused`` for one from a topic outside ``topics`` (when given).
    """
    try:
        claimed: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    except RecursionError as exc:  # it names a topic but nests like an attack: bad, not someone else's
        raise DecodeError(
            "malformed SNS envelope: nested too deeply", raw_body=body, content_type=None
        ) from exc
    if not isinstance(claimed, dict) or claimed.get("Type") != "Notification":
        return None
    try:
        envelope = _decoder.decode(body)
        attributes = {name: _to_wire(a) for name, a in envelope.MessageAttributes.items()}
    except (msgspec.ValidationError, binascii.Error, ValueError) as exc:
        raise DecodeError(f"malformed SNS envelope: {exc}", raw_body=body, content_type=None) from exc
    refusal = None if topics is None else topics.refusal(envelope.TopicArn)
    if refusal is not None:
        raise EnvelopeRefused(f"SNS envelope refused: {refusal}", raw_body=body, topic_arn=envelope.TopicArn)
    return (
        envelope.Message,
        attributes,
        SnsEnvelope(envelope.TopicArn, envelope.MessageId, envelope.Timestamp, envelope.Subject),
    )


def _to_wire(attribute: _Attribute) -> WireAttribute:
    if attribute.Type.startswith("Binary"):
        return WireAttribute(attribute.Type, binary_value=base64.b64decode(attribute.Value, validate=True))
    return WireAttribute(attribute.Type, string_value=attribute.Value)
