"""An in-memory S3 holding offloaded payloads: buckets, objects and lifecycle rules.

It answers as qfan's S3 plane does: a missing key or bucket is ``ObjectNotFound`` (``NoSuchKey``,
``NoSuchBucket``), a capped read of a larger object returns only its size, deleting a missing key succeeds,
and creating a bucket this account owns again is fine.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack

from .._transport import LifecycleChange, PutOptions, StoredObject
from ._common import aws_error

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_ENCRYPTION = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
_DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 reports for an object stored without one


@dataclass(frozen=True)
class _Object:
    data: bytes
    content_type: str
    encryption: Mapping[str, str]


@dataclass(eq=False)
class _Bucket:
    objects: dict[str, _Object] = field(default_factory=dict)
    lifecycle: list[dict[str, Any]] | None = None


class MemoryS3:
    """S3 in memory, implementing :class:`~qfan._transport.ObjectStore`."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, name: str, operation: str) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            raise aws_error("NoSuchBucket", "The specified bucket does not exist", operation, status=404)
        return bucket

    def keys(self, bucket: str) -> list[str]:
        """The keys stored in ``bucket`` (empty when there is no such bucket), for tests to inspect."""
        return sorted(self._buckets[bucket].objects) if bucket in self._buckets else []

    async def put_object(self, bucket: str, key: str, data: bytes, **options: Unpack[PutOptions]) -> None:
        """PutObject; ``encryption`` holds ``ServerSideEncryption`` (and ``SSEKMSKeyId``), only stored."""
        operation = "PutObject"
        target = self._bucket(bucket, operation)
        if not 1 <= len(key.encode()) <= 1024:
            raise aws_error("KeyTooLongError", "Your key is too long", operation)
        encryption = dict(options.get("encryption") or {})
        sse = encryption.get("ServerSideEncryption")
        if sse is not None and sse not in _ENCRYPTION:
            raise aws_error("InvalidArgument", "The encryption method specified is not supported", operation)
        target.objects[key] = _Object(
            bytes(data), options.get("content_type") or _DEFAULT_CONTENT_TYPE, encryption
        )

    async def get_object(self, bucket: str, key: str, *, max_size: int) -> StoredObject:
        """GetObject; an object larger than ``max_size`` bytes comes back with its size and no data."""
        operation = "GetObject"
        stored = self._bucket(bucket, operation).objects.get(key)
        if stored is None:
            raise aws_error("NoSuchKey", "The specified key does not exist.", operation, status=404)
        size = len(stored.data)
        return StoredObject(size, stored.data if size <= max_size else None, stored.content_type)

    async def delete_object(self, bucket: str, key: str) -> None:
        """DeleteObject (a key that is already gone is fine, as on S3)."""
        self._bucket(bucket, "DeleteObject").objects.pop(key, None)

    async def create_bucket(self, bucket: str) -> None:
        """CreateBucket; a bucket this account already owns is fine (``BucketAlreadyOwnedByYou`` on S3)."""
        if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_ADDRESS.fullmatch(bucket):
            raise aws_error("InvalidBucketName", "The specified bucket is not valid.", "CreateBucket")
        self._buckets.setdefault(bucket, _Bucket())

    async def update_lifecycle_rules(self, bucket: str, change: LifecycleChange) -> None:
        """Apply ``change`` to the bucket's lifecycle rules (none yet: an empty list), as S3's plane does."""
        target = self._bucket(bucket, "GetBucketLifecycleConfiguration")
        rules = copy.deepcopy(target.lifecycle or [])
        changed = change(copy.deepcopy(rules))
        if changed == rules:
            return
        if not changed:
            # S3 refuses a lifecycle configuration without rules.
            raise aws_error(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
                "PutBucketLifecycleConfiguration",
            )
        target.lifecycle = copy.deepcopy(changed)

    def lifecycle_rules(self, bucket: str) -> list[dict[str, Any]]:
        """The bucket's lifecycle rules as S3 spells them, for tests to inspect."""
        return copy.deepcopy(self._bucket(bucket, "GetBucketLifecycleConfiguration").lifecycle or [])
