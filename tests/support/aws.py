"""Plain AWS clients for tests that must put things on the wire exactly as another producer would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession


@asynccontextmanager
async def raw_client(service: str, endpoint_url: str) -> AsyncIterator[Any]:
    """An aiobotocore client (path-style S3) pointed at the emulator, with test credentials."""
    config = AioConfig(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})
    async with AioSession().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    ) as client:
        yield client


async def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether S3 holds ``bucket/key`` (asked directly, not through qfan)."""
    listed = await s3.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))
