"""Queue subscriptions to topics: raw delivery, filter policies, redrive, and the queue policy SNS needs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._exceptions import ConfigError
from .._transport import RetryingSns
from ._queue import Queue
from ._topic import Topic

FilterScope = Literal["MessageAttributes", "MessageBody"]
Action = Literal["create", "update", "unchanged"]


def _normalise(name: str, value: str | None) -> object:
    if name in ("FilterPolicy", "RedrivePolicy"):
        parsed = json.loads(value) if value else {}
        return parsed or None
    if name == "FilterPolicyScope":
        return value or "MessageAttributes"
    return (value or "false").lower()


@dataclass(frozen=True, slots=True)
class Subscription:
    """``topic`` delivers to ``queue``; create with :meth:`qfan.App.subscribe`.

    Attributes:
        topic: the topic.
        queue: the subscribed queue.
        raw: raw delivery (the queue receives the published body and attributes as they are); with
            ``False`` SNS wraps them in its JSON envelope, which qfan unwraps on receive.
        filter_policy: an SNS filter policy (``None``: everything).
        filter_scope: whether the policy applies to the ``MessageAttributes`` or the ``MessageBody``.
        dead_letter: where SNS puts messages it cannot deliver to the queue.
    """

    topic: Topic[Any]
    queue: Queue[Any]
    raw: bool = True
    filter_policy: Mapping[str, Any] | None = None
    filter_scope: FilterScope = "MessageAttributes"
    dead_letter: Queue[Any] | None = None

    def __post_init__(self) -> None:
        if self.topic.fifo and not self.queue.fifo:
            raise ConfigError(f"FIFO topic {self.topic.name!r} can only deliver to FIFO queues")
        shared = self.topic.offload is not None and self.queue.offload is not None
        if shared and self.queue.offload is not None and self.queue.offload.delete_payload_on_ack:
            raise ConfigError(
                f"{self.name}: the topic's offloaded payloads are shared by every subscribed queue, so a "
                "subscriber must not delete them: give the queue Offload(..., delete_payload_on_ack=False) "
                "(the topic's expiry rule removes them)"
            )
        if self.filter_scope not in ("MessageAttributes", "MessageBody"):
            raise ConfigError(
                f"filter_scope must be 'MessageAttributes' or 'MessageBody', not {self.filter_scope!r}"
            )

    @property
    def name(self) -> str:
        """``topic -> queue``."""
        return f"{self.topic.name} -> {self.queue.name}"

    def attributes(self, dead_letter_arn: str | None) -> dict[str, str]:
        """The subscription attributes this declaration asks for (an absent filter clears one)."""
        wanted = {
            "RawMessageDelivery": "true" if self.raw else "false",
            "FilterPolicy": json.dumps(self.filter_policy or {}, separators=(",", ":")),
        }
        if self.filter_policy:
            wanted["FilterPolicyScope"] = self.filter_scope
        if dead_letter_arn is not None:
            wanted["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dead_letter_arn})
        return wanted

    async def existing(self, conn: RetryingSns, topic_arn: str, queue_arn: str) -> str | None:
        """The ARN of the topic's subscription for this queue, if there is one."""
        subscriptions = await conn.list_subscriptions(topic_arn)
        for subscription in subscriptions:
            if subscription.get("Protocol") == "sqs" and subscription.get("Endpoint") == queue_arn:
                return subscription.get("SubscriptionArn")
        return None

    async def differences(
        self, conn: RetryingSns, subscription_arn: str, dead_letter_arn: str | None
    ) -> dict[str, str]:
        """Attributes to set on an existing subscription to match the declaration."""
        current = await conn.get_subscription_attributes(subscription_arn)
        return {
            name: value
            for name, value in self.attributes(dead_letter_arn).items()
            if _normalise(name, value) != _normalise(name, current.get(name))
        }

    async def declare(self, conn: RetryingSns) -> Action:
        """Subscribe (or update the subscription) and allow the topic in the queue policy. Idempotent."""
        topic_arn = (await self.topic.declare()).arn
        queue_arn = (await self.queue.declare()).arn
        dead_letter_arn = None if self.dead_letter is None else (await self.dead_letter.declare()).arn
        policy_changed = await self.queue.allow_topic(topic_arn)
        arn = await self.existing(conn, topic_arn, queue_arn)
        if arn is None:
            wanted = {k: v for k, v in self.attributes(dead_letter_arn).items() if v != "{}"}
            await conn.subscribe(topic_arn, queue_arn, wanted)
            return "create"
        changes = await self.differences(conn, arn, dead_letter_arn)
        for name, value in changes.items():
            await conn.set_subscription_attribute(arn, name, value)
        return "update" if changes or policy_changed else "unchanged"
