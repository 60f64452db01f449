"""Signed POSTs to one AWS endpoint over a pooled aiohttp session: what the lean SQS and SNS planes share.

Endpoint, region, credentials, proxy and TLS settings come from the aiobotocore client the plane was opened
beside, so both paths connect the same way. A redirect is never followed (it would re-send the signed request,
session token included, wherever ``Location`` points). When the service says the request time is skewed,
the offset from the answer's ``Date`` is kept for every later call and this one is re-signed, once.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from .._exceptions import AwsError, ConfigError, RedirectRefused
from ._errors import map_aws_errors
from ._redact import register_secret
from ._settings import ConnectionSettings
from ._sigv4 import SigV4Signer, canonical_path, host_of

T = TypeVar("T")

ErrorReader = Callable[[str, int, CIMultiDictProxy[str], bytes], AwsError]
"""Reads an error answer (operation, status, headers, body) as botocore's parser for the protocol does."""

# Errors meaning "the request's time is too far from the service's clock". The signature codes also cover
# wrong keys, so for them the message decides (SQS: "Signature expired: ... is now earlier than ...").
_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
_SIGNATURE_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch"})
_SKEW_MESSAGES = ("too skewed", "signature expired")


def is_clock_skew(error: AwsError) -> bool:
    """Whether ``error`` says the request was signed at a time too far from the service's clock."""
    code = error.code.rpartition("#")[2]
    if code in _SKEW_CODES:
        return True
    return code in _SIGNATURE_CODES and any(text in str(error).lower() for text in _SKEW_MESSAGES)


def clock_offset(date_header: str | None) -> timedelta | None:
    """The service's clock minus ours, from an answer's ``Date`` header (``None`` when unusable)."""
    if not date_header:
        return None
    try:
        server_time = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if server_time.tzinfo is None:  # "-0000" in RFC 5322 means UTC of unknown local origin
        server_time = server_time.replace(tzinfo=UTC)
    return server_time - datetime.now(UTC)


class _ClockSkewed(Exception):
    """Internal: the service refused the request's time; ``offset`` is its clock minus ours."""

    def __init__(self, error: AwsError, offset: timedelta) -> None:
        super().__init__(str(error))
        self.error = error
        self.offset = offset


class SignedClient:
    """One signed POST per call to one endpoint, errors read by ``errors`` and mapped into qfan's tree.

    Args:
        http: the pooled session to post with (owned by the caller).
        endpoint_url: the endpoint the botocore client resolved.
        region: the region the botocore client resolved (the signing region).
        service: the signing name (``sqs``, ``sns``).
        credentials: the aiobotocore credentials object (static or refreshing), or ``None`` when the AWS
            chain found none (each call then fails the way botocore fails: ``ConfigError``).
        errors: reads the service's error answers.
        proxy: the proxy to post through, as botocore resolved it for ``endpoint_url`` (``None``: direct).
        proxy_headers: the headers for that proxy (its credentials).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint_url: str,
        region: str,
        service: str,
        credentials: Any | None,
        *,
        errors: ErrorReader,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._http = http
        # The root path spelled out, as botocore sends it: a proxy is sent this URL as the request target.
        self._url = endpoint_url if urlsplit(endpoint_url).path else endpoint_url + "/"
        self._path = canonical_path(endpoint_url)
        parts = urlsplit(endpoint_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = self._path.rstrip("/")  # what a path-style S3 URL's path starts with
        self.tls = parts.scheme == "https"
        self.host = host_of(endpoint_url)
        self._signer = SigV4Signer(service, region)
        self._credentials = credentials
        self._errors = errors
        # Built once: every post passes the same options. Following a redirect would re-send the signed
        # request (session token included) wherever the answer points, so it is never done.
        # No Content-Type of aiohttp's own: each plane sends its protocol's (an S3 object without one is
        # stored as S3's default, as botocore leaves it).
        self._post_options: dict[str, Any] = {"allow_redirects": False, "skip_auto_headers": _NO_CONTENT_TYPE}
        if proxy is not None:
            self._post_options.update(proxy=proxy, proxy_headers=dict(proxy_headers or {}))
        # The service's clock minus ours, learnt from a clock-skew answer; added to every signing time.
        self._clock_offset = timedelta(0)

    async def _frozen_credentials(self, operation: str) -> Any:
        if self._credentials is None:
            raise ConfigError(f"{operation}: Unable to locate credentials")
        frozen = self._credentials.get_frozen_credentials()
        if inspect.isawaitable(frozen):  # aiobotocore's refreshing credentials refresh asynchronously
            frozen = await frozen
        # Known values are redacted from logs by value too (a dict lookup once seen; refreshed ones added).
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return frozen

    async def call(self, operation: str, payload: bytes, headers: Mapping[str, str]) -> bytes:
        """POST ``payload`` to the endpoint with ``headers``; the answer's body.

        ``headers`` (``host`` included; all of them signed) maps lowercase names to values without
        surrounding or repeated whitespace.
        """
        return await self.request(operation, "POST", self._path, headers, payload, read=_body)

    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        payload: bytes,
        *,
        read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        payload_hash: str | None = None,
    ) -> T:
        """One signed request to ``path`` (already URI-encoded: it is both sent and signed as given);
        ``read`` turns a success answer into the result while it is open. ``payload_hash`` is signed instead
        of the payload's SHA-256 (S3's ``UNSIGNED-PAYLOAD``)."""
        url = self._url if path == self._path else URL(self._origin + path, encoded=True)
        for attempt in (1, 2):  # a clock-skew answer: the offset stays, this request is signed again, once
            credentials = await self._frozen_credentials(operation)
            signed = self._signer.sign(
                path=path,
                headers=headers,
                body=payload,
                access_key=credentials.access_key,
                secret_key=credentials.secret_key,
                token=credentials.token,
                now=datetime.now(UTC) + self._clock_offset,
                method=method,
                payload_hash=payload_hash,
            )
            try:
                with map_aws_errors(operation):
                    async with self._http.request(
                        method,
                        url,
                        data=_payload(payload),
                        headers={**headers, **signed},
                        **self._post_options,
                    ) as response:
                        if response.status >= 300:
                            body = await response.read()
                            raise self._error(operation, response.status, response.headers, body)
                        return await read(response)
            except _ClockSkewed as skewed:
                if attempt == 2:
                    raise skewed.error from None
                self._clock_offset = skewed.offset
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, operation: str, status: int, headers: CIMultiDictProxy[str], body: bytes) -> Exception:
        if status < 400:
            return RedirectRefused(
                status=status,
                location=headers.get("Location"),
                operation=operation,
                request_id=headers.get("x-amzn-requestid"),
            )
        error = self._errors(operation, status, headers, body)
        if is_clock_skew(error):
            offset = clock_offset(headers.get("Date"))
            if offset is not None:
                return _ClockSkewed(error, offset)
        return error


def http_session(
    settings: ConnectionSettings, connector: aiohttp.BaseConnector | None = None
) -> aiohttp.ClientSession:
    """The pooled HTTP session of a lean plane: the botocore client's pool size and timeouts.

    Args:
        settings: the connection settings (timeouts; the pool size when no ``connector`` is given).
        connector: the connector to use, e.g. ``PlaneConnection.connector`` (with the client's TLS
            settings); the session owns and closes it.
    """
    connector = connector or aiohttp.TCPConnector(limit=settings.max_connections, keepalive_timeout=12)
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "qfan"},
    )


async def _body(response: aiohttp.ClientResponse) -> bytes:
    return await response.read()


_NO_CONTENT_TYPE = ("Content-Type",)
_LARGE = 1024 * 1024  # aiohttp's TOO_LARGE_BYTES_BODY


def _payload(data: bytes) -> bytes | aiohttp.BytesPayload | None:
    """The request body as aiohttp sends it, written at once however large (an offloaded payload may be
    several MiB: aiohttp warns past 1 MiB, and the botocore path writes it at once too)."""
    if len(data) <= _LARGE:
        return data or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return aiohttp.BytesPayload(data)
