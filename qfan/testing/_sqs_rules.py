"""SQS's per-message rules, as pure functions over a queue's state: which sends it refuses, how FIFO
deduplication and sequence numbers work, and which messages a receive may take.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from .._transport import SendEntry
from ._common import attribute_problem, has_invalid_characters, message_size
from ._queue_state import MemoryQueue, StoredMessage

# Group and deduplication ids: up to 128 of alphanumerics and ASCII punctuation.
_FIFO_TOKEN = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")


def send_problem(queue: MemoryQueue, entry: SendEntry) -> tuple[str, str] | None:
    """The error code and message SQS fails this batch entry with, or ``None`` when it accepts it."""
    if not entry.body:
        return "MissingParameter", "The request must contain the parameter MessageBody."
    if has_invalid_characters(entry.body):
        return "InvalidMessageContents", "Invalid characters found in the message body."
    problem = attribute_problem(entry.attributes)
    if problem is not None:
        return "InvalidParameterValue", problem
    limit = queue.number("MaximumMessageSize")
    if message_size(entry.body, entry.attributes) > limit:
        return (
            "InvalidParameterValue",
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.",
        )
    delay = entry.delay_seconds
    if delay is not None and not 0 <= delay <= 900:
        return "InvalidParameterValue", f"Value {delay} for parameter DelaySeconds is invalid."
    for name, token in (("MessageGroupId", entry.group_id), ("MessageDeduplicationId", entry.dedup_id)):
        if token is not None and not _FIFO_TOKEN.fullmatch(token):
            return "InvalidParameterValue", f"Value {token} for parameter {name} is invalid."
    return _fifo_problem(queue, entry) if queue.fifo else None


def _fifo_problem(queue: MemoryQueue, entry: SendEntry) -> tuple[str, str] | None:
    if entry.delay_seconds:
        return (
            "InvalidParameterValue",
            f"Value {entry.delay_seconds} for parameter DelaySeconds is invalid. Reason: The request include "
            "parameter that is not valid for this queue type.",
        )
    if entry.group_id is None:
        return "MissingParameter", "The request must contain the parameter MessageGroupId."
    if entry.dedup_id is None and queue.attributes.get("ContentBasedDeduplication") != "true":
        return (
            "InvalidParameterValue",
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId "
            "provided explicitly",
        )
    return None


def dedup_id_of(queue: MemoryQueue, body: str, dedup_id: str | None) -> str:
    """The deduplication id a FIFO message is known by: the given one, else the SHA-256 of its body."""
    return dedup_id if dedup_id is not None else hashlib.sha256(body.encode()).hexdigest()


def dedup_key(queue: MemoryQueue, group_id: str | None, dedup_id: str) -> tuple[str | None, str]:
    """Where the id is remembered: per queue, or per group with ``DeduplicationScope=messageGroup``."""
    per_group = queue.attributes.get("DeduplicationScope") == "messageGroup"
    return (group_id if per_group else None, dedup_id)


def forget_expired(queue: MemoryQueue, now: float) -> None:
    """Drop deduplication ids whose 5-minute window has passed (they stay past a delete, as on AWS)."""
    expired = [key for key, (until, _, _) in queue.dedup.items() if until <= now]
    for key in expired:
        del queue.dedup[key]


def receivable(queue: MemoryQueue, now: float) -> Iterator[StoredMessage]:
    """The messages a receive may take now, in the order it takes them.

    On a FIFO queue a group gives nothing while any of its messages is in flight (or waits behind a delay),
    and otherwise gives its messages in order: the one-in-flight-per-group rule SQS enforces.
    """
    if not queue.fifo:
        yield from [m for m in queue.messages.values() if m.visible_at <= now]
        return
    blocked: set[str | None] = {m.group_id for m in queue.messages.values() if m.in_flight(now)}
    for message in list(queue.messages.values()):
        if message.group_id in blocked:
            continue
        if message.visible_at > now:
            blocked.add(message.group_id)  # keeps the group's later messages behind this one
            continue
        yield message


def next_change(queue: MemoryQueue, now: float) -> float | None:
    """When the next message of the queue becomes visible (its delay or visibility timeout ends)."""
    return min((m.visible_at for m in queue.messages.values() if m.visible_at > now), default=None)
