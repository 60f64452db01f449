"""AWS Signature Version 4 for the lean SQS data path: the same bytes botocore's ``SigV4Auth`` produces.

Chosen over botocore's signer (which rebuilds an ``AWSRequest``, re-derives the signing key with four HMACs
per call and renormalises every header) and over AWS's CRT signer (an extra native dependency, and its
per-call object construction costs more than the hashing here): see ``benchmarks/signers.py``. The signing
key is derived once per secret key and UTC day. ``tests/test_sigv4.py`` pins the output to botocore's,
byte for byte, so the two cannot drift.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

_ALGORITHM = "AWS4-HMAC-SHA256"


def host_of(url: str) -> str:
    """The ``host`` header botocore signs for ``url``: lowercase, without a default port or userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def canonical_path(url: str) -> str:
    """The canonical URI of ``url``'s path, normalised as botocore does (computed once per endpoint)."""
    return quote(normalize_url_path(urlsplit(url).path), safe="/~")


class SigV4Signer:
    """Signs requests without a query string for one service in one region (POST unless told otherwise).

    Args:
        service: the signing name (``sqs``).
        region: the region the endpoint belongs to.
    """

    __slots__ = ("_key_cache", "_region", "_scope_tail", "_service")

    def __init__(self, service: str, region: str) -> None:
        self._service = service
        self._region = region
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._key_cache: tuple[str, str, bytes] | None = None

    def _signing_key(self, secret_key: str, day: str) -> bytes:
        cached = self._key_cache
        if cached is not None and cached[0] == secret_key and cached[1] == day:
            return cached[2]
        key = hmac.digest(f"AWS4{secret_key}".encode(), day.encode(), "sha256")
        for part in (self._region, self._service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        self._key_cache = (secret_key, day, key)
        return key

    def sign(
        self,
        *,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: datetime,
        method: str = "POST",
        payload_hash: str | None = None,
    ) -> dict[str, str]:
        """The headers to add to a request: ``X-Amz-Date``, ``X-Amz-Security-Token`` (with a token) and
        ``Authorization``.

        Args:
            path: the canonical path (``canonical_path(url)``).
            headers: every header to sign, ``host`` included, names in lowercase, values without
                surrounding or repeated whitespace (the caller's own constants).
            body: the exact payload bytes.
            access_key, secret_key, token: the credentials to sign with.
            now: the signing time, in UTC.
            method: the HTTP method.
            payload_hash: what to sign for the payload instead of its SHA-256 (S3's ``UNSIGNED-PAYLOAD``,
                or a hash the caller already has, also sent as ``x-amz-content-sha256``).
        """
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        added = {"X-Amz-Date": amz_date}
        signed = dict(headers)
        signed["x-amz-date"] = amz_date
        if token:
            added["X-Amz-Security-Token"] = token
            signed["x-amz-security-token"] = token
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "{}\n{}\n\n{}\n\n{}\n{}".format(
            method,
            path,
            "\n".join(f"{name}:{signed[name]}" for name in names),
            signed_headers,
            payload_hash or hashlib.sha256(body).hexdigest(),
        )
        scope = amz_date[:8] + self._scope_tail
        string_to_sign = (
            f"{_ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        key = self._signing_key(secret_key, amz_date[:8])
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        added["Authorization"] = (
            f"{_ALGORITHM} Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return added
