"""Planning the topology: what exists, what declaring would create or change — without changing anything."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._exceptions import QueueNotFound
from .._pipeline._connection import Connection
from .._transport import RetryingSns
from ._queue import Queue
from ._queue_options import attribute_differences, queue_diff
from ._queue_policy import merge_sns_statement
from ._subscription import Subscription
from ._topic import Topic

PlanAction = Literal["create", "update", "unchanged", "conflict"]


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One resource in a plan.

    Attributes:
        kind: ``queue``, ``topic``, ``subscription`` or ``queue-policy``.
        name: the resource (a subscription is ``topic -> queue``).
        action: what declaring would do.
        detail: the differences, for ``update`` and ``conflict``.
    """

    kind: str
    name: str
    action: PlanAction
    detail: str = ""

    def line(self) -> str:
        """A printable line."""
        return f"{self.action:<9} {self.kind:<12} {self.name}{f'  ({self.detail})' if self.detail else ''}"


def _describe(differences: dict[str, tuple[str | None, str | None]]) -> str:
    return ", ".join(f"{name}: {have!r} -> {want!r}" for name, (want, have) in sorted(differences.items()))


async def _queue_state(conn: Connection, name: str) -> dict[str, str] | None:
    try:
        url = await conn.sqs.get_queue_url(name)
    except QueueNotFound:
        return None
    return await conn.sqs.get_queue_attributes(url)


async def plan_queue(conn: Connection, queue: Queue[Any]) -> tuple[PlanItem, dict[str, str] | None]:
    """The plan for one queue, and its current attributes (``None`` when it does not exist)."""
    existing = await _queue_state(conn, queue.name)
    if existing is None:
        return PlanItem("queue", queue.name, "create"), None
    dead_letter_arn = None
    if queue.dead_letter is not None:
        dead_letter = await _queue_state(conn, queue.dead_letter.name)
        dead_letter_arn = None if dead_letter is None else dead_letter.get("QueueArn")
    tags = {}
    if queue.options.tags:
        tags = await conn.sqs.list_queue_tags(await conn.sqs.get_queue_url(queue.name))
    diff = queue_diff(queue.options, queue.options.attributes(dead_letter_arn), existing, tags)
    detail = _describe({**diff.attributes, **diff.tags})
    return PlanItem("queue", queue.name, diff.action, detail), existing


async def plan_topic(conn: RetryingSns, topic: Topic[Any]) -> tuple[PlanItem, str | None]:
    """The plan for one topic, and its ARN (``None`` when it does not exist)."""
    arn = await conn.find_topic(topic.name)
    if arn is None:
        return PlanItem("topic", topic.name, "create"), None
    existing = await conn.get_topic_attributes(arn)
    differences = attribute_differences(topic.options.attributes(), existing)
    if differences:
        return PlanItem("topic", topic.name, "conflict", _describe(differences)), arn
    return PlanItem("topic", topic.name, "unchanged"), arn


async def plan_subscription(
    conn: RetryingSns,
    subscription: Subscription,
    topic_arn: str | None,
    queue: dict[str, str] | None,
    dead_letter: dict[str, str] | None,
) -> list[PlanItem]:
    """The plan for a subscription and the queue policy statement it needs."""
    name = subscription.name
    if topic_arn is None or queue is None:
        return [
            PlanItem("subscription", name, "create"),
            PlanItem("queue-policy", subscription.queue.name, "update"),
        ]
    queue_arn = queue["QueueArn"]
    policy_changes = merge_sns_statement(queue.get("Policy"), queue_arn, topic_arn) is not None
    policy = PlanItem(
        "queue-policy",
        subscription.queue.name,
        "update" if policy_changes else "unchanged",
        f"allow sns.amazonaws.com from {topic_arn}" if policy_changes else "",
    )
    arn = await subscription.existing(conn, topic_arn, queue_arn)
    if arn is None:
        return [PlanItem("subscription", name, "create"), policy]
    dead_letter_arn = None if dead_letter is None else dead_letter.get("QueueArn")
    changes = await subscription.differences(conn, arn, dead_letter_arn)
    if not changes:
        return [PlanItem("subscription", name, "unchanged"), policy]
    return [PlanItem("subscription", name, "update", json.dumps(changes)), policy]


async def plan(
    sqs: Connection,
    sns: RetryingSns | None,
    queues: Sequence[Queue[Any]],
    topics: Sequence[Topic[Any]],
    subscriptions: Sequence[Subscription],
) -> list[PlanItem]:
    """What declaring the whole topology would do, in the order it would be done. Changes nothing."""
    items: list[PlanItem] = []
    queue_state: dict[str, dict[str, str] | None] = {}
    for queue in queues:
        item, queue_state[queue.name] = await plan_queue(sqs, queue)
        items.append(item)
    topic_arns: dict[str, str | None] = {}
    if sns is not None:
        for topic in topics:
            item, topic_arns[topic.name] = await plan_topic(sns, topic)
            items.append(item)
        for subscription in subscriptions:
            dead_letter = subscription.dead_letter
            items += await plan_subscription(
                sns,
                subscription,
                topic_arns.get(subscription.topic.name),
                queue_state.get(subscription.queue.name),
                None if dead_letter is None else queue_state.get(dead_letter.name),
            )
    return items
