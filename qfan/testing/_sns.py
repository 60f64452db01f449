"""An in-memory SNS that fans out to the queues of a :class:`~qfan.testing.MemorySqs`.

Topics (FIFO ones end in ``.fifo``), SQS subscriptions with ``RawMessageDelivery``, ``FilterPolicy`` (on
attributes or on the JSON body, see ``_filter``) and ``RedrivePolicy``, and PublishBatch with SNS's limits
and FIFO deduplication. A delivery is made during the publish call, so a message is in every matching queue
when ``publish_batch`` returns (SNS takes a moment; tests that poll lose nothing by it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._transport import BatchResult, EntryFailure, PublishedMessage, PublishEntry, WireAttribute
from ._common import aws_error, check_batch_ids, failure, message_size
from ._filter import FilterPolicyError, matches_attributes, matches_body, parse_policy
from ._queue_state import Resource
from ._sns_rules import (
    check_subscription_attribute,
    check_topic_attributes,
    check_topic_name,
    publish_problem,
)
from ._sqs import MemorySqs

_BATCH_LIMIT = 262_144  # PublishBatch: 256 KiB for all entries together
_DEDUP_WINDOW = 300.0
_CONFIRMED_SQS = {"Protocol": "sqs", "ConfirmationWasAuthenticated": "true", "PendingConfirmation": "false"}


@dataclass(eq=False)
class _Subscription:
    arn: str
    topic_arn: str
    queue_arn: str
    attributes: dict[str, str]
    policy: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class _Topic(Resource):
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    dedup: dict[str, tuple[float, str, str]] = field(default_factory=dict)

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoTopic") == "true"


class MemorySns:
    """SNS in memory, implementing :class:`~qfan._transport.SnsPlane`; it delivers to ``sqs``'s queues.

    Topic ARNs look like ``arn:aws:sns:us-east-1:123456789012:<name>`` (the account and region of ``sqs``).

    Args:
        sqs: the queues subscriptions deliver to.
    """

    def __init__(self, sqs: MemorySqs) -> None:
        self._sqs = sqs
        self._topics: dict[str, _Topic] = {}
        self._sequence = 10_000_000_000_000_000_000

    def arn_of(self, name: str) -> str:
        """The ARN a topic called ``name`` has (whether or not it exists)."""
        return f"arn:aws:sns:{self._sqs.region}:{self._sqs.account_id}:{name}"

    def _topic(self, arn: str, operation: str) -> _Topic:
        topic = self._topics.get(arn)
        if topic is None:
            raise aws_error("NotFound", "Topic does not exist", operation)
        return topic

    def _subscription(self, arn: str, operation: str) -> _Subscription:
        topic = self._topics.get(arn.rpartition(":")[0])
        subscription = None if topic is None else topic.subscriptions.get(arn)
        if subscription is None:
            raise aws_error("NotFound", "Subscription does not exist", operation)
        return subscription

    # -- topics ---------------------------------------------------------------------------------------

    async def find_topic(self, name: str) -> str | None:
        """The ARN of the topic called ``name``, or ``None``."""
        arn = self.arn_of(name)
        return arn if arn in self._topics else None

    async def create_topic(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        """CreateTopic: idempotent for the same attributes, ``InvalidParameter`` for different ones."""
        operation = "CreateTopic"
        given = dict(attributes)
        check_topic_name(name, given)
        fifo = given.get("FifoTopic", "false").lower() == "true"
        check_topic_attributes(given, fifo=fifo, operation=operation, creating=True)
        existing = self._topics.get(self.arn_of(name))
        if existing is not None:
            if any(existing.attributes.get(k, "") != v for k, v in given.items()):
                raise aws_error(
                    "InvalidParameter",
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                    operation,
                )
            return existing.arn
        defaults = {"FifoTopic": "true", "ContentBasedDeduplication": "false"} if fifo else {}
        merged = {"DisplayName": "", **defaults, **given}
        if not fifo:
            merged.pop("FifoTopic", None)  # "false" is not stored: a standard topic reports no FifoTopic
        topic = _Topic(name, self.arn_of(name), merged, dict(tags))
        self._topics[topic.arn] = topic
        return topic.arn

    async def get_topic_attributes(self, topic_arn: str) -> dict[str, str]:
        """GetTopicAttributes: the stored attributes plus owner, policy and subscription counts."""
        topic = self._topic(topic_arn, "GetTopicAttributes")
        return {
            "TopicArn": topic.arn,
            "Owner": self._sqs.account_id,
            "Policy": _default_policy(topic.arn, self._sqs.account_id),
            "SubscriptionsConfirmed": str(len(topic.subscriptions)),
            "SubscriptionsPending": "0",
            "SubscriptionsDeleted": "0",
            **topic.attributes,
        }

    async def set_topic_attribute(self, topic_arn: str, name: str, value: str) -> None:
        """SetTopicAttributes (``FifoTopic`` cannot change)."""
        operation = "SetTopicAttributes"
        topic = self._topic(topic_arn, operation)
        check_topic_attributes({name: value}, fifo=topic.fifo, operation=operation, creating=False)
        topic.attributes[name] = value

    async def delete_topic(self, topic_arn: str) -> None:
        """DeleteTopic, with its subscriptions; deleting a missing topic succeeds, as on SNS."""
        self._topics.pop(topic_arn, None)

    # -- subscriptions --------------------------------------------------------------------------------

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        """ListSubscriptionsByTopic."""
        topic = self._topic(topic_arn, "ListSubscriptionsByTopic")
        return [
            {
                "SubscriptionArn": s.arn,
                "Owner": self._sqs.account_id,
                "Protocol": "sqs",
                "Endpoint": s.queue_arn,
                "TopicArn": topic.arn,
            }
            for s in topic.subscriptions.values()
        ]

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        """Subscribe an SQS queue; the same subscription again returns its ARN, as SNS does."""
        operation = "Subscribe"
        topic = self._topic(topic_arn, operation)
        if not queue_arn.startswith("arn:aws:sqs:") or len(queue_arn.split(":")) != 6:
            raise aws_error("InvalidParameter", "Invalid parameter: SQS endpoint ARN", operation)
        if queue_arn.endswith(".fifo") and not topic.fifo:
            raise aws_error(
                "InvalidParameter",
                "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be "
                "subscribed to standard SNS topics",
                operation,
            )
        for existing in topic.subscriptions.values():
            if existing.queue_arn == queue_arn:
                if any(existing.attributes.get(k) != v for k, v in attributes.items()):
                    raise aws_error(
                        "InvalidParameter",
                        "Invalid parameter: Attributes Reason: Subscription already exists with different "
                        "attributes",
                        operation,
                    )
                return existing.arn
        subscription = _Subscription(
            f"{topic.arn}:{uuid.uuid4()}", topic.arn, queue_arn, {"RawMessageDelivery": "false"}
        )
        self._set(subscription, attributes, operation)
        topic.subscriptions[subscription.arn] = subscription
        return subscription.arn

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        """GetSubscriptionAttributes."""
        subscription = self._subscription(subscription_arn, "GetSubscriptionAttributes")
        arns = {"SubscriptionArn": subscription.arn, "TopicArn": subscription.topic_arn}
        endpoint = {"Endpoint": subscription.queue_arn, "Owner": self._sqs.account_id}
        return {**arns, **endpoint, **_CONFIRMED_SQS, **subscription.attributes}

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None:
        """SetSubscriptionAttributes."""
        operation = "SetSubscriptionAttributes"
        self._set(self._subscription(subscription_arn, operation), {name: value}, operation)

    def _set(self, subscription: _Subscription, changes: Mapping[str, str], operation: str) -> None:
        """Apply attribute changes together: a policy is checked against the scope it ends up with."""
        for name, value in changes.items():
            check_subscription_attribute(name, value, operation)
        attributes = {**subscription.attributes, **changes}
        if "FilterPolicy" in attributes:
            attributes.setdefault("FilterPolicyScope", "MessageAttributes")
            try:
                policy = parse_policy(attributes["FilterPolicy"], attributes["FilterPolicyScope"])
            except FilterPolicyError as exc:
                raise aws_error(
                    "InvalidParameter", f"Invalid parameter: FilterPolicy: {exc}", operation
                ) from None
            subscription.policy = policy
        subscription.attributes = attributes

    # -- publishing -----------------------------------------------------------------------------------

    async def publish_batch(
        self, topic_arn: str, entries: Sequence[PublishEntry]
    ) -> BatchResult[PublishedMessage]:
        """PublishBatch: each accepted entry is delivered to every subscribed queue whose filter it passes."""
        operation = "PublishBatch"
        topic = self._topic(topic_arn, operation)
        check_batch_ids([entry.id for entry in entries], operation, prefix="")
        total = sum(message_size(entry.body, entry.attributes) for entry in entries)
        if total > _BATCH_LIMIT:
            raise aws_error(
                "BatchRequestTooLong",
                "The length of all the messages put together is more than the limit.",
                operation,
            )
        succeeded: list[PublishedMessage] = []
        failed: list[EntryFailure] = []
        for entry in entries:
            problem = publish_problem(entry, fifo=topic.fifo, content_dedup=_content_dedup(topic))
            if problem is not None:
                failed.append(failure(entry.id, "InvalidParameter", problem))
                continue
            succeeded.append(self._publish(topic, entry))
        return BatchResult(succeeded=succeeded, failed=failed)

    def _publish(self, topic: _Topic, entry: PublishEntry) -> PublishedMessage:
        dedup_id: str | None = None
        sequence: str | None = None
        if topic.fifo:
            now = self._sqs.now()
            topic.dedup = {k: v for k, v in topic.dedup.items() if v[0] > now}
            dedup_id = entry.dedup_id or hashlib.sha256(entry.body.encode()).hexdigest()
            if dedup_id in topic.dedup:
                _, known_id, known_sequence = topic.dedup[dedup_id]
                return PublishedMessage(entry.id, known_id, known_sequence)
            self._sequence += 1
            sequence = f"{self._sequence:020d}"
        message_id = str(uuid.uuid4())
        if dedup_id is not None and sequence is not None:
            topic.dedup[dedup_id] = (self._sqs.now() + _DEDUP_WINDOW, message_id, sequence)
        for subscription in list(topic.subscriptions.values()):
            if _passes(subscription, entry):
                self._deliver(topic, subscription, entry, message_id, sequence, dedup_id)
        return PublishedMessage(entry.id, message_id, sequence)

    def _deliver(
        self,
        topic: _Topic,
        subscription: _Subscription,
        entry: PublishEntry,
        message_id: str,
        sequence: str | None,
        dedup_id: str | None,
    ) -> None:
        raw = subscription.attributes.get("RawMessageDelivery") == "true"
        body = entry.body if raw else _envelope(topic, subscription, entry, message_id, sequence)
        attributes: Mapping[str, WireAttribute] = entry.attributes if raw else {}
        delivered = self._sqs.deliver(
            subscription.queue_arn, body, attributes, group_id=entry.group_id, dedup_id=dedup_id
        )
        redrive = subscription.attributes.get("RedrivePolicy")
        if delivered is None and redrive:
            # SNS gives up on a queue that refuses the message (or is gone) and dead-letters it.
            target = json.loads(redrive).get("deadLetterTargetArn", "")
            self._sqs.deliver(target, body, attributes, group_id=entry.group_id, dedup_id=dedup_id)


def _content_dedup(topic: _Topic) -> bool:
    return topic.attributes.get("ContentBasedDeduplication") == "true"


def _passes(subscription: _Subscription, entry: PublishEntry) -> bool:
    if not subscription.policy:
        return True
    if subscription.attributes.get("FilterPolicyScope") == "MessageBody":
        return matches_body(subscription.policy, entry.body)
    return matches_attributes(subscription.policy, entry.attributes)


def _envelope(
    topic: _Topic, subscription: _Subscription, entry: PublishEntry, message_id: str, sequence: str | None
) -> str:
    """The JSON notification SNS wraps a message in when raw delivery is off, in SNS's field order."""
    envelope: dict[str, Any] = {"Type": "Notification", "MessageId": message_id}
    if sequence is not None:
        envelope["SequenceNumber"] = sequence
    envelope["TopicArn"] = topic.arn
    if entry.subject is not None:
        envelope["Subject"] = entry.subject
    now = datetime.now(UTC)
    region = topic.arn.split(":")[3]
    envelope |= {
        "Message": entry.body,
        "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "SignatureVersion": "1",
        # Not a real signature: nothing in memory can be verified against SNS's certificate anyway.
        "Signature": base64.b64encode(secrets.token_bytes(256)).decode(),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-memory.pem",
        "UnsubscribeURL": (
            f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}"
        ),
    }
    if entry.attributes:
        envelope["MessageAttributes"] = {
            name: {
                "Type": a.data_type,
                "Value": base64.b64encode(a.binary_value).decode()
                if a.binary_value is not None
                else a.string_value,
            }
            for name, a in entry.attributes.items()
        }
    return json.dumps(envelope, indent=2, separators=(",", " : "))


def _default_policy(topic_arn: str, account_id: str) -> str:
    actions = ["SNS:Publish", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:GetTopicAttributes"]
    statement = {
        "Sid": "__default_statement_ID",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": actions,
        "Resource": topic_arn,
        "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}},
    }
    return json.dumps({"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [statement]})
