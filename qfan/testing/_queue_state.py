"""One in-memory SQS queue: its attributes (validated as SQS validates them) and its messages.

A message's state is derived from two numbers rather than kept as a flag, so nothing has to run in the
background: it is *delayed* while it was never received and ``visible_at`` lies ahead, *in flight* while it
was received and ``visible_at`` lies ahead, and *visible* otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from .._transport import WireAttribute
from .._wire._limits import MAX_VISIBILITY
from ._common import aws_error

DEDUP_WINDOW = 300.0  # seconds: SQS (and SNS FIFO) drop a repeated deduplication id for 5 minutes

_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_BOOLEAN = ("true", "false")
# Attribute -> (lowest, highest) for the integer attributes.
_RANGES = {
    "VisibilityTimeout": (0, MAX_VISIBILITY),
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, 1_048_576),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
_CHOICES = {
    "SqsManagedSseEnabled": _BOOLEAN,
    "FifoQueue": _BOOLEAN,
    "ContentBasedDeduplication": _BOOLEAN,
    "DeduplicationScope": ("messageGroup", "queue"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
_FREE = frozenset({"Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId"})
_FIFO_ONLY = frozenset({"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"})
_STANDARD_DEFAULTS = {
    "VisibilityTimeout": "30",
    "DelaySeconds": "0",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "SqsManagedSseEnabled": "true",
}
_FIFO_DEFAULTS = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}


@dataclass(eq=False)
class StoredMessage:
    """One message in a queue, with what SQS tracks about its deliveries."""

    message_id: str
    body: str
    attributes: dict[str, WireAttribute]
    md5_of_body: str
    md5_of_attributes: str | None
    sent_ms: int
    visible_at: float
    group_id: str | None = None
    dedup_id: str | None = None
    sequence_number: str | None = None
    receive_count: int = 0
    first_received_ms: int | None = None
    delivery: int = 0  # which delivery the current receipt handle belongs to
    received_at: float = 0.0
    origin_arn: str | None = None  # the queue SQS dead-lettered it from, for a move task without destination
    trace_header: str | None = None  # the AWSTraceHeader system attribute

    def in_flight(self, now: float) -> bool:
        return self.receive_count > 0 and self.visible_at > now

    def delayed(self, now: float) -> bool:
        return self.receive_count == 0 and self.visible_at > now


@dataclass(eq=False)
class Resource:
    """A queue or a topic: its name, ARN, attributes as AWS reports them, and tags."""

    name: str
    arn: str
    attributes: dict[str, str]
    tags: dict[str, str]


@dataclass(eq=False)
class MemoryQueue(Resource):
    """One queue: a :class:`Resource` with its URL, times, and messages in send order."""

    url: str
    created: int
    modified: int
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    # deduplication key -> (expiry on the queue's clock, message id, sequence number)
    dedup: dict[tuple[str | None, str], tuple[float, str, str]] = field(default_factory=dict)
    waiters: set[anyio.Event] = field(default_factory=set)

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"

    def number(self, name: str) -> int:
        return int(self.attributes[name])

    def redrive(self) -> tuple[str, int] | None:
        """The dead-letter queue's ARN and ``maxReceiveCount``, when the queue has a redrive policy."""
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        policy = json.loads(raw)
        return str(policy["deadLetterTargetArn"]), int(policy["maxReceiveCount"])

    def wake(self) -> None:
        """Wake every long poll waiting on this queue: something may have become receivable."""
        for waiter in self.waiters:
            waiter.set()
        self.waiters.clear()


def check_name(name: str, attributes: dict[str, str]) -> None:
    """SQS's queue name rules: 1-80 of ``[A-Za-z0-9_-]``, plus ``.fifo`` exactly for a FIFO queue."""
    fifo = attributes.get("FifoQueue", "false").lower() == "true"
    stem = name.removesuffix(".fifo") if fifo else name
    if fifo and not name.endswith(".fifo"):
        raise aws_error(
            "InvalidParameterValue", "Queue name must end in .fifo for FIFO queues", "CreateQueue"
        )
    if not _NAME.fullmatch(stem) or len(name) > 80:
        raise aws_error(
            "InvalidParameterValue",
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            "CreateQueue",
        )


def initial_attributes(name: str, attributes: dict[str, str]) -> dict[str, str]:
    """A new queue's attributes: SQS's defaults for its kind, overridden by the given ones."""
    fifo = attributes.get("FifoQueue", "false").lower() == "true"
    merged = {**_STANDARD_DEFAULTS, **(_FIFO_DEFAULTS if fifo else {}), **attributes}
    if not fifo:
        merged.pop("FifoQueue", None)
    if attributes.get("KmsMasterKeyId"):
        # A KMS key replaces SQS-managed encryption, and brings its data key period.
        merged.setdefault("KmsDataKeyReusePeriodSeconds", "300")
        if "SqsManagedSseEnabled" not in attributes:
            merged["SqsManagedSseEnabled"] = "false"
    return merged


def validate(attributes: dict[str, str], *, fifo: bool, operation: str, creating: bool) -> dict[str, str]:
    """The attributes as SQS stores them, or the SQS error for the first one it refuses."""
    stored: dict[str, str] = {}
    for name, value in attributes.items():
        known = name in _RANGES or name in _CHOICES or name in _FREE
        if not known or (name in _FIFO_ONLY and not fifo) or (name == "FifoQueue" and not creating):
            raise aws_error("InvalidAttributeName", f"Unknown Attribute {name}.", operation)
        if name in _RANGES:
            low, high = _RANGES[name]
            if not value.isdigit() or not low <= int(value) <= high:
                raise _invalid(name, operation)
            value = str(int(value))
        elif name in _CHOICES:
            value = (
                value.lower()
                if name in ("SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication")
                else value
            )
            if value not in _CHOICES[name]:
                raise _invalid(name, operation)
        elif name in ("Policy", "RedriveAllowPolicy") and value:
            _parse_json(name, value, operation)
        stored[name] = value
    return stored


def redrive_policy(value: str, operation: str) -> tuple[str, int] | None:
    """A ``RedrivePolicy``'s target ARN and ``maxReceiveCount``; ``None`` for ``""``, which removes it."""
    if not value:
        return None
    policy = _parse_json("RedrivePolicy", value, operation)
    target = policy.get("deadLetterTargetArn")
    try:
        count = int(policy["maxReceiveCount"])
    except (KeyError, TypeError, ValueError):
        raise _invalid("RedrivePolicy", operation) from None
    if not isinstance(target, str) or not 1 <= count <= 1000:
        raise _invalid("RedrivePolicy", operation)
    return target, count


def _parse_json(name: str, value: str, operation: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise _invalid(name, operation) from None
    if not isinstance(parsed, dict):
        raise _invalid(name, operation)
    return parsed


def _invalid(name: str, operation: str) -> Exception:
    return aws_error("InvalidAttributeValue", f"Invalid value for the parameter {name}.", operation)


def same_value(name: str, left: str, right: str) -> bool:
    """Whether two values of attribute ``name`` mean the same (JSON policies compare parsed)."""
    if name in ("Policy", "RedrivePolicy", "RedriveAllowPolicy"):
        try:
            return bool(json.loads(left) == json.loads(right))
        except ValueError:
            return left == right
    return left == right
