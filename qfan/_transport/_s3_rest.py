"""The lean S3 path of offloaded payloads: PutObject, capped GetObject and DeleteObject over aiohttp.

Path-style URLs on the endpoint the botocore client resolved (as the botocore plane addresses them), signed
with SigV4. The payload, as botocore's S3 signer decides it: over TLS the body is signed as
``UNSIGNED-PAYLOAD`` with a checksum header S3 verifies (here ``x-amz-checksum-crc32``: TLS protects the bytes
in flight, the CRC32 what S3 stores, and it costs a fraction of a SHA-256 of 300 KiB); over plain HTTP
(emulators, an ``http://`` endpoint) its SHA-256 is signed and sent in ``x-amz-content-sha256``, which S3
checks.

Bucket creation and lifecycle rules are rare and stay on aiobotocore: :class:`FastS3` is the botocore plane
with the three per-message calls replaced.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any, Unpack
from urllib.parse import quote

import aiohttp

from ._s3 import BotocoreS3, capped_read
from ._signed import SignedClient
from ._types import PutOptions, StoredObject

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# The SSE parameters of PutObject, as headers.
_ENCRYPTION_HEADERS = {
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
}


class FastS3(BotocoreS3):
    """S3 with PutObject, GetObject and DeleteObject on the lean path; bucket calls on aiobotocore.

    Args:
        client: the aiobotocore S3 client (bucket creation, lifecycle rules).
        region: its region.
        signed: signed requests to the same endpoint, region and credentials (service ``s3``).
    """

    def __init__(self, client: Any, region: str, signed: SignedClient) -> None:
        super().__init__(client, region)
        self._signed = signed

    def _path(self, bucket: str, key: str) -> str:
        return f"{self._signed.base_path}/{bucket}/{quote(key, safe='/~')}"

    def _headers(self, payload_hash: str) -> dict[str, str]:
        return {"host": self._signed.host, "x-amz-content-sha256": payload_hash}

    async def put_object(self, bucket: str, key: str, data: bytes, **options: Unpack[PutOptions]) -> None:
        """PutObject; ``encryption`` holds the ``ServerSideEncryption``/``SSEKMSKeyId`` parameters."""
        if self._signed.tls:  # TLS protects it in flight; S3 checks the CRC32 of what arrived
            headers = self._headers(UNSIGNED_PAYLOAD)
            headers["x-amz-checksum-crc32"] = crc32_header(data)
        else:
            headers = self._headers(hashlib.sha256(data).hexdigest())
        payload_hash = headers["x-amz-content-sha256"]
        content_type = options.get("content_type")
        if content_type is not None:
            headers["content-type"] = content_type
        for name, value in (options.get("encryption") or {}).items():
            headers[_ENCRYPTION_HEADERS.get(name, name.lower())] = value
        path = self._path(bucket, key)
        await self._signed.request(
            "PutObject", "PUT", path, headers, data, read=_nothing, payload_hash=payload_hash
        )

    async def get_object(self, bucket: str, key: str, *, max_size: int) -> StoredObject:
        """GetObject, reading the body only when it is at most ``max_size`` bytes (see
        :meth:`BotocoreS3.get_object`: the announced length is not trusted to bound the read)."""

        async def read(response: aiohttp.ClientResponse) -> StoredObject:
            announced = int(response.headers.get("Content-Length", 0))
            content_type = response.headers.get("Content-Type")
            return await capped_read(response.content.read, announced, max_size, content_type)

        headers = self._headers(_EMPTY_SHA256)
        path = self._path(bucket, key)
        return await self._signed.request(
            "GetObject", "GET", path, headers, b"", read=read, payload_hash=_EMPTY_SHA256
        )

    async def delete_object(self, bucket: str, key: str) -> None:
        """DeleteObject (S3 answers success for a key that is already gone)."""
        headers = self._headers(_EMPTY_SHA256)
        path = self._path(bucket, key)
        await self._signed.request(
            "DeleteObject", "DELETE", path, headers, b"", read=_nothing, payload_hash=_EMPTY_SHA256
        )


def crc32_header(data: bytes) -> str:
    """``x-amz-checksum-crc32``: the big-endian CRC32 of ``data``, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def _nothing(response: aiohttp.ClientResponse) -> None:
    await response.read()
