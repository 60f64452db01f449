"""The offload policy of a queue: when message bodies go to S3, where, and what a reader will accept."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ._exceptions import ConfigError
from ._pointer import MARKERS, Marker

DEFAULT_MAX_PAYLOAD_SIZE = 64 * 1024 * 1024
"""Default largest payload read (and written): whole payloads are held in memory."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9./_-]{0,988}$")  # the Java client's rule for s3KeyPrefix


def _check_bucket(name: str) -> None:
    if not isinstance(name, str) or not _BUCKET.match(name) or ".." in name:
        raise ConfigError(
            f"invalid S3 bucket name {name!r}: 3-63 characters of a-z 0-9 . -, "
            "starting and ending with a letter or digit"
        )


@dataclass(frozen=True, slots=True)
class Offload:
    """Send large message bodies through S3, in the format of AWS's extended clients (Java and Python).

    A body whose size (body + attributes, as SQS counts it) exceeds ``threshold`` — or every body, with
    ``always`` — is stored as an S3 object; the queue carries a pointer to it and a marker attribute.
    Readers (qfan, or AWS's clients) fetch it back. On an offloaded message the body's content type
    travels as the S3 object's ``Content-Type`` instead of qfan's ``content-type`` attribute, so the marker
    takes that attribute's slot and the user keeps the same 9 attributes as on any message.

    Args:
        bucket: the bucket payloads are written to.
        prefix: key prefix for payload objects (at most 988 characters of ``A-Z a-z 0-9 . / _ -``).
        threshold: ``"auto"`` (the queue's ``MaximumMessageSize``, read when it is declared) or a size in
            bytes (at most that maximum).
        always: offload every message, whatever its size.
        marker: the attribute that marks offloaded messages: ``"ExtendedPayloadSize"`` (AWS's current
            clients) or ``"SQSLargePayloadSize"`` (the Java SQS client's legacy default). Either is read.
        encryption: server-side encryption of payloads: ``None`` (the bucket's default), ``"AES256"``
            (SSE-S3), ``"aws:kms"`` (SSE-KMS with AWS's managed key) or a KMS key id, ARN or alias.
        max_payload_size: the largest payload read; larger objects are refused (``PayloadTooLarge``)
            unread, and larger bodies are not sent (``MessageTooLarge``).
        allowed_buckets: buckets payloads may also be read from, besides ``bucket``. A pointer to any other
            bucket is refused (``PayloadRefused``) without a request to S3.
        delete_payload_on_ack: delete the S3 object after its SQS message is deleted.
        declare_bucket: create the bucket (idempotently) when the queue is declared.
        expire_with_retention: when declaring, set a lifecycle rule on the bucket that expires objects
            under ``prefix`` (required then) once the queue's retention period, plus its dead-letter
            queue's, is over (rounded up to whole days), so payloads of messages that were never acked do
            not stay behind.
    """

    bucket: str
    prefix: str = ""
    threshold: int | Literal["auto"] = "auto"
    always: bool = False
    marker: Marker = "ExtendedPayloadSize"
    encryption: str | None = None
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE
    allowed_buckets: Iterable[str] | None = None
    delete_payload_on_ack: bool = True
    declare_bucket: bool = True
    expire_with_retention: bool = False
    _allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_bucket(self.bucket)
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            raise ConfigError(
                f"invalid offload prefix {self.prefix!r}: at most 988 characters of A-Z a-z 0-9 . / _ -"
            )
        if self.expire_with_retention and not self.prefix:
            raise ConfigError(
                "expire_with_retention needs a prefix: without one the rule would expire every object in "
                f"bucket {self.bucket!r}"
            )
        if self.threshold != "auto" and (
            isinstance(self.threshold, bool) or not isinstance(self.threshold, int) or self.threshold < 0
        ):
            raise ConfigError(f"offload threshold must be 'auto' or bytes >= 0, got {self.threshold!r}")
        if self.marker not in MARKERS:
            raise ConfigError(f"offload marker must be one of {', '.join(MARKERS)}, got {self.marker!r}")
        if self.encryption is not None and (not isinstance(self.encryption, str) or not self.encryption):
            raise ConfigError(
                f"offload encryption must be 'AES256', 'aws:kms' or a KMS key, not {self.encryption!r}"
            )
        if isinstance(self.max_payload_size, bool) or not (
            isinstance(self.max_payload_size, int) and self.max_payload_size >= 1
        ):
            raise ConfigError(
                f"max_payload_size must be a positive number of bytes, got {self.max_payload_size!r}"
            )
        extra = self.allowed_buckets or ()
        allowed = frozenset([self.bucket, *([extra] if isinstance(extra, str) else extra)])
        for name in allowed:
            _check_bucket(name)
        object.__setattr__(self, "allowed_buckets", tuple(sorted(allowed)))
        object.__setattr__(self, "_allowed", allowed)

    def allows(self, bucket: str) -> bool:
        """Whether payloads may be read from (and deleted in) ``bucket``."""
        return bucket in self._allowed

    def threshold_for(self, max_message_size: int) -> int:
        """The size above which a body is offloaded, on a queue with this ``MaximumMessageSize``."""
        return max_message_size if self.threshold == "auto" else min(self.threshold, max_message_size)

    def put_encryption(self) -> dict[str, str]:
        """The PutObject parameters that ask for this policy's server-side encryption."""
        if self.encryption is None:
            return {}
        if self.encryption == "AES256":
            return {"ServerSideEncryption": "AES256"}
        if self.encryption == "aws:kms":
            return {"ServerSideEncryption": "aws:kms"}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.encryption}
