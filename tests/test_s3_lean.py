"""The lean S3 path of offloaded payloads on the wire: what it signs over plain HTTP and over TLS.

Over plain HTTP (the emulators) the body's SHA-256 goes in ``x-amz-content-sha256``; over TLS (here a TLS
front trusted through ``AWS_CA_BUNDLE``, forwarding to the emulator) the body is ``UNSIGNED-PAYLOAD`` with an
``x-amz-checksum-crc32`` of it, as botocore's S3 signer decides. Either way the payload round-trips.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

import qfan

from .support.loopback import Seen, forwarding, self_signed_certificate
from .test_security_transport import app_for

BODY = {"pixels": "x" * 300_000}


def puts(seen: list[Seen]) -> list[Seen]:
    """The PutObject requests (``PUT /bucket/key``; ``PUT /bucket`` creates the bucket)."""
    return [
        r for r in seen if r.method == "PUT" and r.target.startswith("/payloads-") and r.target.count("/") > 1
    ]


async def round_trip(app: qfan.App, name: str, bucket: str) -> None:
    queue = app.queue(name, offload=qfan.Offload(bucket, always=True, declare_bucket=True))
    async with app:
        await queue.send(BODY)
        (message,) = await queue.receive(max_messages=1, wait=5)
        assert message.body == BODY
        await message.ack()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
async def test_payload_integrity_fits_the_connection(
    endpoint_url: str,
    unique_name: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tls: bool,
) -> None:
    certificate = self_signed_certificate(tmp_path)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate.pem))
    name = unique_name()
    bucket = f"payloads-{name.lower()[-20:]}"
    async with forwarding(endpoint_url, tls=certificate.server_context if tls else None) as front:
        await round_trip(app_for(front.url, "fast"), name, bucket)
    (put,) = puts(front.seen)
    if tls:
        assert put.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        expected = base64.b64encode(zlib.crc32(put.body).to_bytes(4, "big")).decode()
        assert put.headers["x-amz-checksum-crc32"] == expected
    else:
        assert put.headers["x-amz-content-sha256"] == hashlib.sha256(put.body).hexdigest()
        assert "x-amz-checksum-crc32" not in put.headers
    assert len(put.body) > 300_000
    assert "Content-Type" in put.headers  # the body's own (application/json), not aiohttp's
    assert put.headers["Content-Type"] == "application/json"
