"""The offload policy of a queue: when message bodies go to S3, where, and what a reader will accept."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .._exceptions import ConfigError
from .._wire._pointer import MARKERS, Marker

DEFAULT_MAX_PAYLOAD_SIZE = 64 * 1024 * 1024
"""Default largest payload read (and written): whole payloads are held in memory."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9./_-]{0,988}$")  # the Java client's rule for s3KeyPrefix


# Key characters that some client, proxy or server on the way might read as something else (a path
# separator, an escape, the end of a line). qfan and AWS's extended clients write ``prefix + uuid`` keys,
# so a pointer with any of these was not written by them.
_SUSPICIOUS_KEY = re.compile(r"[\\%\x00-\x1f\x7f]")
_MAX_KEY_BYTES = 1024


def key_refusal(key: str) -> str | None:
    """Why an S3 key named by a received pointer is refused whatever the policy, or ``None``.

    S3 keys are opaque strings, but HTTP clients and some S3-compatible servers normalise ``.``/``..``
    path segments, so ``scans/../billing/x`` may be served as ``billing/x``: such keys never pass.
    """
    if len(key.encode()) > _MAX_KEY_BYTES:
        return f"its key is longer than S3's {_MAX_KEY_BYTES} bytes"
    if key.startswith("/") or any(segment in (".", "..") for segment in key.split("/")):
        return "its key has a '/'-leading, '.' or '..' path segment"
    if _SUSPICIOUS_KEY.search(key):
        return "its key contains a backslash, '%' or a control character"
    return None


def _allow_list(
    bucket: str, prefix: str, extra: Iterable[str] | Mapping[str, str] | None
) -> dict[str, tuple[str, ...]]:
    """Bucket -> the key prefixes readable there: the policy's own, plus ``allowed_buckets``."""
    pairs = [(bucket, prefix)]
    if isinstance(extra, Mapping):
        pairs += [(name, extra[name]) for name in extra]
    else:
        for entry in [extra] if isinstance(extra, str) else (extra or ()):
            if not isinstance(entry, str):
                raise ConfigError(
                    f"allowed_buckets entries must be 'bucket' or 'bucket/prefix', got {entry!r}"
                )
            name, _, entry_prefix = entry.partition("/")
            pairs.append((name, entry_prefix))
    allowed: dict[str, tuple[str, ...]] = {}
    for name, entry_prefix in pairs:
        _check_bucket(name)
        _check_prefix(entry_prefix)
        allowed[name] = (*allowed.get(name, ()), entry_prefix)
    return allowed


def _check_prefix(prefix: str) -> None:
    if not isinstance(prefix, str) or not _PREFIX.match(prefix) or key_refusal(prefix or "x") is not None:
        raise ConfigError(
            f"invalid offload prefix {prefix!r}: at most 988 characters of A-Z a-z 0-9 . / _ -, "
            "without '.' or '..' segments"
        )


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
        allowed_buckets: where else payloads may be read from, besides ``bucket`` under ``prefix``: bucket
            names (any key there), ``"bucket/prefix"`` strings, or a mapping ``{bucket: prefix}``. A pointer
            anywhere else — another bucket, a key outside the prefixes, or a key with ``.``/``..`` segments,
            backslashes, ``%`` or control characters — is refused (``PayloadRefused``): the object is never
            fetched and never deleted.
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
    allowed_buckets: Iterable[str] | Mapping[str, str] | None = None
    delete_payload_on_ack: bool = True
    declare_bucket: bool = True
    expire_with_retention: bool = False
    _allowed: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_bucket(self.bucket)
        _check_prefix(self.prefix)
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
        allowed = _allow_list(self.bucket, self.prefix, self.allowed_buckets)
        listed = {
            f"{name}/{prefix}" if prefix else name
            for name, prefixes in allowed.items()
            for prefix in prefixes
        }
        object.__setattr__(self, "allowed_buckets", tuple(sorted(listed)))
        object.__setattr__(self, "_allowed", allowed)

    def allows(self, bucket: str, key: str | None = None) -> bool:
        """Whether the payload at ``bucket``/``key`` may be read (and deleted); see :meth:`refusal`.

        Without ``key``: whether any payload in ``bucket`` may be.
        """
        if key is None:
            return bucket in self._allowed
        return self.refusal(bucket, key) is None

    def refusal(self, bucket: str, key: str) -> str | None:
        """Why a pointer to ``bucket``/``key`` is refused, or ``None`` when the policy accepts it."""
        prefixes = self._allowed.get(bucket)
        if prefixes is None:
            return "its bucket is not allowed (the policy's bucket and allowed_buckets)"
        suspicious = key_refusal(key)
        if suspicious is not None:
            return suspicious
        if not any(key.startswith(prefix) for prefix in prefixes):
            return f"its key is outside the allowed prefixes {', '.join(map(repr, prefixes))} of that bucket"
        return None

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
