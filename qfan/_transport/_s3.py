"""S3 for offloaded payloads: put, capped get and delete of objects, and idempotent bucket declaration.

Like the SQS side, each method makes exactly one request (retrying is the caller's job) and maps errors
with ``map_aws_errors``. Addressing is path-style, which every emulator and every AWS region accepts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Unpack

import anyio
from aiobotocore.session import AioSession

from .._exceptions import AwsError
from ._botocore import open_client
from ._errors import map_aws_errors
from ._settings import ConnectionSettings
from ._types import LifecycleChange, PutOptions, StoredObject

# Answers to CreateBucket meaning "it is already there, and it is yours" (us-east-1 says nothing at all).
_OWN_BUCKET = frozenset({"BucketAlreadyOwnedByYou"})
_NO_LIFECYCLE = frozenset({"NoSuchLifecycleConfiguration"})
# The most a capped read asks of the stream at once: bounds what is buffered past the limit.
_READ_CHUNK = 256 * 1024


async def capped_read(
    read: Callable[[int], Awaitable[bytes]], announced: int, max_size: int, content_type: str | None
) -> StoredObject:
    """An object's body from a stream (``read(n)``), only when it is at most ``max_size`` bytes.

    A body announced larger is not read at all; one without a length, or longer than announced, is read in
    chunks and dropped as soon as it passes ``max_size``: its ``size`` is then a lower bound.
    """
    if announced > max_size:
        return StoredObject(announced, None, content_type)
    chunks: list[bytes] = []
    received = 0
    while received <= max_size:  # one byte past the limit is enough to know the object is too large
        chunk = await read(min(_READ_CHUNK, max_size + 1 - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > max_size:
        return StoredObject(max(announced, received), None, content_type)
    return StoredObject(received, b"".join(chunks), content_type)


class BotocoreS3:
    """The few S3 calls payload offloading needs, over an aiobotocore client."""

    def __init__(self, client: Any, region: str) -> None:
        self._client = client
        self._region = region
        self._lifecycle_lock = anyio.Lock()

    async def put_object(self, bucket: str, key: str, data: bytes, **options: Unpack[PutOptions]) -> None:
        """PutObject; ``encryption`` holds the ``ServerSideEncryption``/``SSEKMSKeyId`` parameters."""
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": data,
            **(options.get("encryption") or {}),
        }
        if options.get("content_type") is not None:
            params["ContentType"] = options["content_type"]
        with map_aws_errors("PutObject"):
            await self._client.put_object(**params)

    async def get_object(self, bucket: str, key: str, *, max_size: int) -> StoredObject:
        """GetObject, reading the body only when it is at most ``max_size`` bytes.

        The announced length is not trusted to bound the read: a body without one (chunked) or longer than
        announced is read in chunks and dropped as soon as it passes ``max_size``. Its ``size`` is then a
        lower bound (what was read), larger than ``max_size`` either way.
        """
        with map_aws_errors("GetObject"):
            response = await self._client.get_object(Bucket=bucket, Key=key)
            announced = int(response.get("ContentLength", 0))
            async with response["Body"] as stream:  # closing the stream drops what was not read
                return await capped_read(stream.read, announced, max_size, response.get("ContentType"))

    async def delete_object(self, bucket: str, key: str) -> None:
        """DeleteObject (S3 answers success for a key that is already gone)."""
        with map_aws_errors("DeleteObject"):
            await self._client.delete_object(Bucket=bucket, Key=key)

    async def create_bucket(self, bucket: str) -> None:
        """CreateBucket in the client's region; a bucket this account already owns is fine."""
        params: dict[str, Any] = {"Bucket": bucket}
        if self._region != "us-east-1":  # us-east-1 is the one region that refuses a LocationConstraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            with map_aws_errors("CreateBucket"):
                await self._client.create_bucket(**params)
        except AwsError as exc:
            if exc.code not in _OWN_BUCKET:
                raise

    async def update_lifecycle_rules(self, bucket: str, change: LifecycleChange) -> None:
        """Read the bucket's lifecycle rules, apply ``change``, and write the result back.

        Two requests, serialised per client so that queues declared concurrently on one bucket do not
        overwrite each other's rules (S3 only replaces the whole configuration).
        """
        async with self._lifecycle_lock:
            try:
                with map_aws_errors("GetBucketLifecycleConfiguration"):
                    response = await self._client.get_bucket_lifecycle_configuration(Bucket=bucket)
                rules = list(response.get("Rules", []))
            except AwsError as exc:
                if exc.code not in _NO_LIFECYCLE:
                    raise
                rules = []
            changed = change(rules)
            if changed == rules:
                return
            with map_aws_errors("PutBucketLifecycleConfiguration"):
                await self._client.put_bucket_lifecycle_configuration(
                    Bucket=bucket, LifecycleConfiguration={"Rules": changed}
                )


def open_s3_client(settings: ConnectionSettings, session: AioSession | None = None) -> Any:
    """One pooled aiobotocore S3 client (path-style, botocore retries off), an async context manager."""
    return open_client(
        settings,
        "s3",
        session=session,
        s3={"addressing_style": "path"},
        # A plain Content-Length upload with its checksum in a header: no aws-chunked bodies, which some
        # emulators and proxies mishandle.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


@asynccontextmanager
async def open_s3(settings: ConnectionSettings) -> AsyncIterator[BotocoreS3]:
    """Open the aiobotocore S3 plane for the block."""
    async with open_s3_client(settings) as client:
        yield BotocoreS3(client, client.meta.region_name)
