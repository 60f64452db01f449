"""``qfan.S3Archive``: where and how a queue is archived to S3 (Firehose's delivery stream settings)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._exceptions import ConfigError
from ._formats import Compression, FormatName
from ._keys import DEFAULT_TEMPLATE, KeyTemplate

MiB = 1024 * 1024
MAX_BYTES = 128 * MiB  # Firehose's largest buffer: 1-128 MiB, default 5 MiB
MAX_INTERVAL = 900.0  # Firehose's longest buffer interval: 60-900 s, default 300 s
MAX_RECORDS = 10_000  # messages one buffer holds at most (each is in flight until its object is written)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class S3Archive:
    """An archive of a queue's messages in S3: buffered into objects under date (or dynamic) partitions.

    Firehose's settings map one to one: buffer size (``max_bytes``), buffer interval (``max_interval``),
    S3 prefix (``prefix`` + ``key_template``), error output prefix (``error_prefix``), compression and
    record format conversion (``format="parquet"``). A buffer is written when it holds ``max_bytes``
    (JSON-encoded record bytes), ``max_records`` messages or is ``max_interval`` seconds old, whichever
    comes first; its messages are deleted only once every object of the buffer is in S3.

    Args:
        bucket: the bucket objects are written to.
        prefix: the key prefix of data objects, e.g. ``"datos/"``.
        error_prefix: where records that cannot be decoded, serialised or partitioned go, under
            ``error_prefix + {error-type}/YYYY/MM/dd/HH/``, with their raw body and the reason.
        max_bytes: buffer size in bytes. Firehose allows 1-128 MiB (default 5 MiB); qfan allows any size
            up to 128 MiB (small ones for tests and low latency, at one PutObject per buffer).
        max_interval: buffer age in seconds. Firehose allows 60-900 s (default 300 s); qfan allows
            anything above 0 up to 900 s.
        max_records: messages per buffer, 1-10,000 (every buffered message is in flight: SQS allows
            120,000 in flight per standard queue).
        format: ``"jsonl"`` (JSON Lines, one record per line) or ``"parquet"`` (needs ``qfan[parquet]``;
            the schema is derived from the record type, which must be a struct, dataclass or TypedDict).
        compression: ``"gzip"`` (JSON Lines: ``.jsonl.gz`` objects; Parquet: its gzip codec) or ``None``
            (Parquet: snappy).
        key_template: the partition path after ``prefix``: ``{yyyy}``, ``{MM}``, ``{dd}``, ``{HH}`` (UTC),
            ``{attr:NAME}`` (a message attribute), ``{field:PATH}`` (a field of the value, dotted).
        type: the record type (default: the source queue's type); records are decoded into it.
        name: the object names' first part (default: the archive worker's name).
        declare_bucket: create the bucket (idempotently) before the first write.
        clock: the time partitions and names are taken from (default: now, UTC); read once per buffer.
    """

    bucket: str
    prefix: str = ""
    error_prefix: str = "errors/"
    max_bytes: int = 5 * MiB
    max_interval: float = 300.0
    max_records: int = MAX_RECORDS
    format: FormatName = "jsonl"
    compression: Compression = None
    key_template: str = DEFAULT_TEMPLATE
    type: Any = None
    name: str | None = None
    declare_bucket: bool = True
    clock: Callable[[], datetime] = _utc_now

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ConfigError("S3Archive needs a bucket")
        for what, prefix in (("prefix", self.prefix), ("error_prefix", self.error_prefix)):
            if prefix.startswith("/") or any(part in (".", "..") for part in prefix.split("/")):
                raise ConfigError(f"S3Archive {what} {prefix!r}: no leading '/', '.' or '..' segments")
        if self.error_prefix == self.prefix:
            raise ConfigError("S3Archive error_prefix must differ from prefix (errors would mix with data)")
        if not 1 <= self.max_bytes <= MAX_BYTES:
            raise ConfigError(f"S3Archive max_bytes must be 1..{MAX_BYTES} (128 MiB), got {self.max_bytes}")
        if not 0 < self.max_interval <= MAX_INTERVAL:
            raise ConfigError(f"S3Archive max_interval must be in (0, 900] seconds, got {self.max_interval}")
        if not 1 <= self.max_records <= MAX_RECORDS:
            raise ConfigError(f"S3Archive max_records must be 1..{MAX_RECORDS}, got {self.max_records}")
        if self.format not in ("jsonl", "parquet"):
            raise ConfigError(f"S3Archive format must be 'jsonl' or 'parquet', got {self.format!r}")
        if self.compression not in (None, "gzip"):
            raise ConfigError(f"S3Archive compression must be 'gzip' or None, got {self.compression!r}")
        self.template  # noqa: B018 - parse now: a bad template is a ConfigError at registration

    @property
    def template(self) -> KeyTemplate:
        """The parsed ``key_template``."""
        return KeyTemplate.parse(self.key_template)


@dataclass
class ArchiveStats:
    """What an archive worker has written since it started.

    Attributes:
        objects: data objects written.
        records: records in them.
        bytes: bytes written (data and error objects, as stored).
        error_objects: objects written under the error prefix.
        error_records: records in them.
        buffered: messages in the buffer right now.
        write_failures: object writes that failed (after the S3 plane's own retries) and were retried.
        lag: seconds between the oldest record of the last buffer being sent and its object being
            written (Firehose's data freshness).
        recent_keys: the keys of the last 1,000 objects written, oldest first.
    """

    objects: int = 0
    records: int = 0
    bytes: int = 0
    error_objects: int = 0
    error_records: int = 0
    buffered: int = 0
    write_failures: int = 0
    lag: float = 0.0
    recent_keys: deque[str] = field(default_factory=lambda: deque(maxlen=1000))

    def summary(self) -> str:
        """One progress line."""
        return (
            f"objects={self.objects} records={self.records} bytes={self.bytes} "
            f"errors={self.error_records} buffered={self.buffered} lag={self.lag:.1f}s"
        )
