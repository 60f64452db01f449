"""Queue declaration options: validation, the SQS attributes they mean, and comparison with a live queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from .._exceptions import ConfigError
from .._wire._limits import MAX_VISIBILITY

MAX_MESSAGE_SIZE = 1_048_576
"""The SQS message size limit (1 MiB) since August 2025."""

DEFAULT_WAIT = 20
OnConflict = Literal["error", "update"]

# Attributes SQS will not change on an existing queue.
_IMMUTABLE = frozenset({"FifoQueue"})


@dataclass(frozen=True, slots=True)
class SqsManagedEncryption:
    """Server-side encryption with SQS-owned keys (SSE-SQS)."""


@dataclass(frozen=True, slots=True)
class KmsEncryption:
    """Server-side encryption with a KMS key (SSE-KMS).

    Attributes:
        key_id: key id, ARN, alias name (``alias/...``) or alias ARN; ``alias/aws/sqs`` is AWS's managed key.
        data_key_reuse_seconds: how long SQS reuses a data key (60 s .. 24 h).
    """

    key_id: str
    data_key_reuse_seconds: int = 300

    def __post_init__(self) -> None:
        _check_range("data_key_reuse_seconds", self.data_key_reuse_seconds, 60, 86_400)


Encryption = SqsManagedEncryption | KmsEncryption


class QueueSettings(TypedDict, total=False):
    """The keyword options of :meth:`qfan.App.queue`.

    Attributes:
        fifo: FIFO queue (default: inferred from the ``.fifo`` suffix).
        content_based_dedup: FIFO: derive dedup ids from the body's SHA-256.
        high_throughput: FIFO: dedup and throughput per message group (high-throughput mode).
        visibility_timeout: seconds a received message stays hidden (0 .. 12 h).
        retention: seconds messages are kept (60 s .. 14 days).
        receive_wait: the queue's long-poll wait (0-20 s); receives default to 20 s.
        delay: seconds every new message stays invisible (0-900).
        max_message_size: bytes (1,024 .. 1,048,576).
        max_receives: receives before a message is dead-lettered (1-1000, default 5).
        encryption: ``SqsManagedEncryption()`` or ``KmsEncryption(key_id)``.
        tags: queue tags.
        on_conflict: an existing queue with other attributes is an ``"error"`` (default) or is ``"update"``d.
        create: create the queue when missing (default); ``False`` only looks it up.
    """

    fifo: bool | None
    content_based_dedup: bool | None
    high_throughput: bool | None
    visibility_timeout: int | None
    retention: int | None
    receive_wait: int | None
    delay: int | None
    max_message_size: int | None
    max_receives: int
    encryption: Encryption | None
    tags: Mapping[str, str]
    on_conflict: OnConflict
    create: bool


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int number of seconds/bytes, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


def _flag(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """Everything a queue declaration may say. ``None`` means "not specified": AWS's default on create,
    and not compared against an existing queue."""

    name: str
    fifo: bool | None = None
    content_based_dedup: bool | None = None
    high_throughput: bool | None = None
    visibility_timeout: int | None = None
    retention: int | None = None
    receive_wait: int | None = None
    delay: int | None = None
    max_message_size: int | None = None
    max_receives: int = 5
    encryption: Encryption | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    on_conflict: OnConflict = "error"
    create: bool = True

    def __post_init__(self) -> None:
        if self.fifo is None:  # inferred from the name, as SQS requires FIFO names to end in .fifo
            object.__setattr__(self, "fifo", self.name.endswith(".fifo"))
        object.__setattr__(self, "tags", dict(self.tags))
        if not self.name or len(self.name) > 80:
            raise ConfigError(f"queue name must be 1-80 characters, got {self.name!r}")
        stem = self.name.removesuffix(".fifo")
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in stem):
            raise ConfigError(
                f"queue name {self.name!r} may only hold A-Z a-z 0-9 - _ (and a '.fifo' suffix)"
            )
        if self.fifo != self.name.endswith(".fifo"):
            raise ConfigError(
                f"queue {self.name!r}: FIFO queue names must end in '.fifo', and only FIFO names may"
            )
        if not self.fifo and (self.content_based_dedup or self.high_throughput):
            raise ConfigError(
                f"queue {self.name!r}: content_based_dedup and high_throughput need a FIFO queue"
            )
        _check_range("visibility_timeout", self.visibility_timeout, 0, MAX_VISIBILITY)
        _check_range("retention", self.retention, 60, 1_209_600)
        _check_range("receive_wait", self.receive_wait, 0, 20)
        _check_range("delay", self.delay, 0, 900)
        _check_range("max_message_size", self.max_message_size, 1_024, MAX_MESSAGE_SIZE)
        _check_range("max_receives", self.max_receives, 1, 1_000)
        if self.on_conflict not in ("error", "update"):
            raise ConfigError(f"on_conflict must be 'error' or 'update', got {self.on_conflict!r}")
        if len(self.tags) > 50:
            raise ConfigError(f"a queue can have at most 50 tags, got {len(self.tags)}")

    @property
    def wait_seconds(self) -> int:
        """The long-poll wait used by receives (the queue's own setting, else 20 s)."""
        return DEFAULT_WAIT if self.receive_wait is None else self.receive_wait

    def attributes(self, dead_letter_arn: str | None) -> dict[str, str]:
        """The SQS attributes this declaration asks for."""
        wanted: dict[str, str] = {}
        if self.fifo:
            wanted["FifoQueue"] = "true"
        if self.content_based_dedup is not None:
            wanted["ContentBasedDeduplication"] = _flag(self.content_based_dedup)
        if self.high_throughput is not None:
            scope, limit = (
                ("messageGroup", "perMessageGroupId") if self.high_throughput else ("queue", "perQueue")
            )
            wanted["DeduplicationScope"] = scope
            wanted["FifoThroughputLimit"] = limit
        numbers = {
            "VisibilityTimeout": self.visibility_timeout,
            "MessageRetentionPeriod": self.retention,
            "ReceiveMessageWaitTimeSeconds": self.receive_wait,
            "DelaySeconds": self.delay,
            "MaximumMessageSize": self.max_message_size,
        }
        wanted.update({name: str(value) for name, value in numbers.items() if value is not None})
        if dead_letter_arn is not None:
            wanted["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": self.max_receives},
                separators=(",", ":"),
            )
        if isinstance(self.encryption, SqsManagedEncryption):
            wanted["SqsManagedSseEnabled"] = "true"
        elif isinstance(self.encryption, KmsEncryption):
            wanted["KmsMasterKeyId"] = self.encryption.key_id
            wanted["KmsDataKeyReusePeriodSeconds"] = str(self.encryption.data_key_reuse_seconds)
        return wanted


def _normalise(name: str, value: str | None) -> object:
    if value is None:
        return {"FifoQueue": "false", "ContentBasedDeduplication": "false"}.get(name)
    if name == "RedrivePolicy":
        try:
            policy = json.loads(value)
            return (policy.get("deadLetterTargetArn"), int(policy.get("maxReceiveCount", 0)))
        except (ValueError, TypeError, AttributeError):
            return value
    return value.lower() if value.lower() in ("true", "false") else value


def attribute_differences(
    wanted: Mapping[str, str], existing: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Attributes whose existing value differs from the wanted one: name -> (wanted, existing)."""
    return {
        name: (value, existing.get(name))
        for name, value in wanted.items()
        if _normalise(name, value) != _normalise(name, existing.get(name))
    }


def immutable_differences(
    differences: Mapping[str, tuple[str | None, str | None]],
) -> dict[str, tuple[str | None, str | None]]:
    """The differences that cannot be fixed by updating the queue."""
    return {name: diff for name, diff in differences.items() if name in _IMMUTABLE}


def tag_differences(
    wanted: Mapping[str, str], existing: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Declared tags missing or different on the queue (extra tags on the queue are fine)."""
    return {
        f"tag:{key}": (value, existing.get(key))
        for key, value in wanted.items()
        if existing.get(key) != value
    }


Differences = dict[str, tuple[str | None, str | None]]


@dataclass(frozen=True, slots=True)
class QueueDiff:
    """How a live queue differs from its declaration, and what declaring does about it.

    ``declare`` acts on it and ``plan`` reports it: the one place that decides between the two.

    Attributes:
        attributes: attribute differences, name -> (wanted, existing).
        tags: declared tags missing or different, ``tag:<key>`` -> (wanted, existing).
        action: ``unchanged``; ``update`` (differences that ``on_conflict="update"`` may fix); or
            ``conflict`` (an immutable attribute differs, or updating was not allowed).
        conflicting: for ``conflict``, what ``QueueConflict`` reports (the immutable differences when there
            are any, else every difference).
    """

    attributes: Differences
    tags: Differences
    action: Literal["unchanged", "update", "conflict"]
    conflicting: Differences


def queue_diff(
    options: QueueOptions, wanted: Mapping[str, str], existing: Mapping[str, str], tags: Mapping[str, str]
) -> QueueDiff:
    """Compare a live queue (its ``existing`` attributes and ``tags``) with ``wanted`` from ``options``."""
    attributes = attribute_differences(wanted, existing)
    tag_diff = tag_differences(options.tags, tags)
    every = {**attributes, **tag_diff}
    fixed = immutable_differences(attributes)
    if not every:
        return QueueDiff(attributes, tag_diff, "unchanged", {})
    if fixed or options.on_conflict != "update":
        return QueueDiff(attributes, tag_diff, "conflict", fixed or every)
    return QueueDiff(attributes, tag_diff, "update", {})
