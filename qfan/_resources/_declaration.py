"""Declaring a queue: create it if missing, else compare the live queue with the declaration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .._exceptions import QueueConflict, QueueNameExists, QueueNotFound
from .._pipeline._connection import Connection
from ._queue_options import MAX_MESSAGE_SIZE, QueueOptions, queue_diff


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """What declaring a queue learned about it.

    Attributes:
        url: the queue URL every call uses.
        arn: the queue ARN (for redrive policies and subscriptions).
        max_message_size: the queue's ``MaximumMessageSize`` in bytes.
        content_based_dedup: whether a FIFO queue derives dedup ids from bodies.
        attributes: all attributes as SQS reported them at declare time.
    """

    url: str
    arn: str
    max_message_size: int
    content_based_dedup: bool
    attributes: Mapping[str, str]


async def declare_queue(conn: Connection, options: QueueOptions, dead_letter_arn: str | None) -> QueueInfo:
    """Create the queue if missing (unless ``options.create`` is false), else reconcile it. Idempotent."""
    sqs, name = conn.sqs, options.name
    wanted = options.attributes(dead_letter_arn)
    created = False
    try:
        url = await sqs.get_queue_url(name)
    except QueueNotFound:
        if not options.create:
            raise
        try:
            url = await sqs.create_queue(name, wanted, options.tags)
            created = True
        except QueueNameExists:  # a concurrent declaration with other attributes won the race
            url = await sqs.get_queue_url(name)
    attributes = await sqs.get_queue_attributes(url)
    if not created:
        attributes = await _reconcile(conn, options, url, wanted, attributes)
    return QueueInfo(
        url=url,
        arn=attributes.get("QueueArn", ""),
        max_message_size=int(attributes.get("MaximumMessageSize", MAX_MESSAGE_SIZE)),
        content_based_dedup=attributes.get("ContentBasedDeduplication", "").lower() == "true",
        attributes=attributes,
    )


async def _reconcile(
    conn: Connection, options: QueueOptions, url: str, wanted: dict[str, str], existing: dict[str, str]
) -> dict[str, str]:
    """Compare an existing queue with the declaration; update it only when asked to."""
    sqs = conn.sqs
    diff = queue_diff(options, wanted, existing, await sqs.list_queue_tags(url))
    if diff.action == "unchanged":
        return existing
    if diff.action == "conflict":
        raise QueueConflict(options.name, diff.conflicting)
    if diff.attributes:
        await sqs.set_queue_attributes(url, {name: wanted[name] for name in diff.attributes})
    if diff.tags:
        await sqs.tag_queue(url, options.tags)
    return await sqs.get_queue_attributes(url)
