"""What SNS refuses: topic names and attributes, subscription attributes, and PublishBatch entries.

SNS reports all of these as ``InvalidParameter`` (``Invalid parameter: ...``).
"""

from __future__ import annotations

import json
import re

from .._transport import PublishEntry
from ._common import attribute_problem, aws_error, has_invalid_characters

_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TOPIC_ATTRIBUTES = frozenset(
    {
        "DisplayName",
        "Policy",
        "DeliveryPolicy",
        "KmsMasterKeyId",
        "SignatureVersion",
        "TracingConfig",
        "DataProtectionPolicy",
        "FifoTopic",
        "ContentBasedDeduplication",
        "ArchivePolicy",
        "FifoThroughputScope",
    }
)
_FIFO_TOPIC_ONLY = frozenset({"ContentBasedDeduplication", "ArchivePolicy", "FifoThroughputScope"})
_SUBSCRIPTION_ATTRIBUTES = frozenset(
    {
        "DeliveryPolicy",
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "SubscriptionRoleArn",
        "ReplayPolicy",
    }
)


def _invalid(detail: str, operation: str) -> Exception:
    return aws_error("InvalidParameter", f"Invalid parameter: {detail}", operation)


def check_topic_name(name: str, attributes: dict[str, str]) -> None:
    """1-256 of ``[A-Za-z0-9_-]``, plus ``.fifo`` exactly for a FIFO topic."""
    fifo = attributes.get("FifoTopic", "false").lower() == "true"
    stem = name.removesuffix(".fifo") if fifo else name
    if not _NAME.fullmatch(stem) or len(name) > 256 or (fifo and not name.endswith(".fifo")):
        raise _invalid("Topic Name", "CreateTopic")


def check_topic_attributes(attributes: dict[str, str], *, fifo: bool, operation: str, creating: bool) -> None:
    """Known names, FIFO-only ones on FIFO topics, ``FifoTopic`` only when creating, boolean booleans."""
    for name, value in attributes.items():
        if (
            name not in _TOPIC_ATTRIBUTES
            or (name in _FIFO_TOPIC_ONLY and not fifo)
            or (name == "FifoTopic" and not creating)
        ):
            raise _invalid(f"AttributeName: {name}", operation)
        if name in ("FifoTopic", "ContentBasedDeduplication") and value.lower() not in ("true", "false"):
            raise _invalid(f"Attributes Reason: {name} must be true or false", operation)
        if name == "FifoThroughputScope" and value not in ("Topic", "MessageGroup"):
            raise _invalid("Attributes Reason: FifoThroughputScope must be Topic or MessageGroup", operation)
        if name in ("Policy", "DeliveryPolicy", "DataProtectionPolicy", "ArchivePolicy") and value:
            _check_json(name, value, operation)


def check_subscription_attribute(name: str, value: str, operation: str) -> None:
    """A subscription attribute SNS accepts for an SQS endpoint (the filter policy is checked apart)."""
    if name not in _SUBSCRIPTION_ATTRIBUTES:
        raise _invalid("AttributeName", operation)
    if name == "RawMessageDelivery" and value.lower() not in ("true", "false"):
        raise _invalid(f"Attributes Reason: RawMessageDelivery: Invalid value [{value}]", operation)
    if name == "FilterPolicyScope" and value not in ("MessageAttributes", "MessageBody"):
        raise _invalid(f"Attributes Reason: FilterPolicyScope: Invalid value [{value}].", operation)
    if name == "RedrivePolicy" and value:
        policy = _check_json(name, value, operation)
        if not isinstance(policy.get("deadLetterTargetArn"), str):
            raise _invalid("RedrivePolicy: deadLetterTargetArn is missing", operation)


def _check_json(name: str, value: str, operation: str) -> dict[str, object]:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise _invalid(f"{name}: failed to parse JSON", operation) from None
    if not isinstance(parsed, dict):
        raise _invalid(f"{name}: must be a JSON object", operation)
    return parsed


def publish_problem(entry: PublishEntry, *, fifo: bool, content_dedup: bool) -> str | None:
    """Why SNS refuses this PublishBatch entry (its ``InvalidParameter`` message), or ``None``."""
    if not entry.body:
        return "Invalid parameter: Empty message"
    if has_invalid_characters(entry.body):
        return "Invalid parameter: Message contains invalid characters"
    subject = entry.subject
    if subject is not None and (
        not subject or len(subject) > 100 or not subject.isascii() or any(c in subject for c in "\r\n")
    ):
        return "Invalid parameter: Subject"
    problem = attribute_problem(entry.attributes, limit=None)
    if problem is not None:
        return f"Invalid parameter: Message attributes: {problem}"
    if fifo and entry.group_id is None:
        return "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    if fifo and entry.dedup_id is None and not content_dedup:
        return (
            "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or "
            "MessageDeduplicationId provided explicitly"
        )
    if not fifo and entry.dedup_id is not None:
        return (
            "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId "
            "parameter that is not valid for this topic type"
        )
    return None
