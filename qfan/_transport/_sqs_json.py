"""The lean SQS data plane: the four hot calls in the SQS JSON protocol over a pooled aiohttp session.

Requests are msgspec structs encoded in one pass (the entry records in ``_types`` carry the wire names);
responses decode straight into those records. What botocore does per call besides — endpoint rules, event
hooks, user-agent assembly, generic serialisation and parsing — is done once when the plane is opened, from
the same aiobotocore session and client, so endpoint, region and credentials are the botocore path's own.
Errors come out exactly as botocore's JSON parser reads them (``x-amzn-query-error`` wins over
``__type``), then go through the same ``error_for_code`` / ``map_aws_errors`` mapping.

Like the botocore path it connects through the proxy and with the TLS settings the client resolved (see
``PlaneConnection``) and never follows a redirect. Unlike botocore, it corrects its clock when the service
says the request time is skewed: it keeps the offset from the answer's ``Date`` and re-signs once.
"""

from __future__ import annotations

import http.client
import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from .._exceptions import AwsError, ConfigError, RedirectRefused
from ._errors import error_for_code, map_aws_errors
from ._redact import register_secret
from ._settings import ConnectionSettings
from ._sigv4 import SigV4Signer, canonical_path, host_of
from ._types import (
    BatchResult,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    VisibilityEntry,
)

_CONTENT_TYPE = "application/x-amz-json-1.0"
_ALL = ("All",)

# Errors meaning "the request's time is too far from the service's clock". The signature codes also cover
# wrong keys, so for them the message decides (SQS: "Signature expired: ... is now earlier than ...").
_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
_SIGNATURE_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch"})
_SKEW_MESSAGES = ("too skewed", "signature expired")


class _SendBatch(msgspec.Struct, gc=False):
    QueueUrl: str
    Entries: Sequence[SendEntry]


class _Receive(msgspec.Struct, gc=False, omit_defaults=True):
    QueueUrl: str
    MaxNumberOfMessages: int
    WaitTimeSeconds: int
    MessageAttributeNames: tuple[str, ...]
    MessageSystemAttributeNames: tuple[str, ...]
    VisibilityTimeout: int | None = None


class _DeleteBatch(msgspec.Struct, gc=False):
    QueueUrl: str
    Entries: Sequence[ReceiptEntry]


class _VisibilityBatch(msgspec.Struct, gc=False):
    QueueUrl: str
    Entries: Sequence[VisibilityEntry]


class _Messages(msgspec.Struct, gc=False):
    Messages: list[ReceivedMessage] | None = None


class _Ok(msgspec.Struct, gc=False, rename={"id": "Id"}):
    id: str


_encode = msgspec.json.Encoder().encode
_decode_sent = msgspec.json.Decoder(BatchResult[SentMessage]).decode
_decode_ids = msgspec.json.Decoder(BatchResult[_Ok]).decode
_decode_messages = msgspec.json.Decoder(_Messages).decode
_decode_any = msgspec.json.Decoder().decode


@contextmanager
def _parsing(operation: str) -> Iterator[None]:
    """A success answer that does not parse is reported as botocore reports it (``ResponseParserError``)."""
    try:
        yield
    except msgspec.DecodeError as exc:  # ValidationError included: a field of the wrong type or missing
        raise AwsError(
            f"Unable to parse response ({exc})", code="ResponseParserError", operation=operation
        ) from exc


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


def error_from_response(operation: str, status: int, headers: CIMultiDictProxy[str], body: bytes) -> AwsError:
    """The qfan error for an SQS JSON-protocol error answer, read the way botocore's JSON parser reads it."""
    if status >= 500 and (not body.strip() or body.strip().startswith(b"<html>")):
        # botocore's generic answer for a bare 5xx (a proxy's or load balancer's): no code, no request id
        message = http.client.responses.get(status, "")
        return error_for_code(str(status), message, operation=operation, status=status)
    try:
        parsed = _decode_any(body) if body else {}
    except msgspec.DecodeError:
        parsed = {"message": body.decode(errors="replace")}
    if not isinstance(parsed, dict):
        parsed = {}
    message = parsed.get("message", parsed.get("Message", ""))
    code = str(parsed.get("__type") or status).split(":", 1)[0].rpartition("#")[2]
    sender_fault: bool | None = None
    query_error = headers.get("x-amzn-query-error", "").split(";")
    if len(query_error) == 2 and query_error[0]:
        code, sender_fault = query_error[0], query_error[1] == "Sender"
    return error_for_code(
        code,
        str(message or ""),
        operation=operation,
        request_id=headers.get("x-amzn-requestid"),
        sender_fault=sender_fault,
        status=status,
    )


class _ClockSkewed(Exception):
    """Internal: the service refused the request's time; ``offset`` is its clock minus ours."""

    def __init__(self, error: AwsError, offset: timedelta) -> None:
        super().__init__(str(error))
        self.error = error
        self.offset = offset


class FastSqs:
    """The SQS data plane over aiohttp: one signed POST per call, no botocore on the way.

    Args:
        http: the pooled session to post with (owned by the caller).
        endpoint_url: the SQS endpoint the botocore client resolved.
        region: the region the botocore client resolved (the signing region).
        credentials: the aiobotocore credentials object (static or refreshing), or ``None`` when the AWS
            chain found none (each call then fails the way botocore fails: ``ConfigError``).
        proxy: the proxy to post through, as botocore resolved it for ``endpoint_url`` (``None``: direct).
        proxy_headers: the headers for that proxy (its credentials).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint_url: str,
        region: str,
        credentials: Any | None,
        *,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._http = http
        # The root path spelled out, as botocore sends it: a proxy is sent this URL as the request target.
        self._url = endpoint_url if urlsplit(endpoint_url).path else endpoint_url + "/"
        self._path = canonical_path(endpoint_url)
        self._host = host_of(endpoint_url)
        self._signer = SigV4Signer("sqs", region)
        self._credentials = credentials
        # Built once: every post passes the same options. Following a redirect would re-send the signed
        # request (session token included) wherever the answer points, so it is never done.
        self._post_options: dict[str, Any] = {"allow_redirects": False}
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

    async def _call(self, operation: str, payload: bytes) -> bytes:
        try:
            return await self._post(operation, payload)
        except _ClockSkewed as skewed:
            # The offset stays for every later call; this one is signed again, once, on the corrected clock.
            self._clock_offset = skewed.offset
        try:
            return await self._post(operation, payload)
        except _ClockSkewed as again:
            raise again.error from None

    async def _post(self, operation: str, payload: bytes) -> bytes:
        """One signed request; raises the mapped error, or ``_ClockSkewed`` for a clock-skew error."""
        credentials = await self._frozen_credentials(operation)
        target = f"AmazonSQS.{operation}"
        signed = self._signer.sign(
            path=self._path,
            headers={
                "content-type": _CONTENT_TYPE,
                "host": self._host,
                "x-amz-target": target,
                "x-amzn-query-mode": "true",
            },
            body=payload,
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            token=credentials.token,
            now=datetime.now(UTC) + self._clock_offset,
        )
        headers = {
            "Content-Type": _CONTENT_TYPE,
            "Host": self._host,
            "X-Amz-Target": target,
            "x-amzn-query-mode": "true",
            **signed,
        }
        with map_aws_errors(operation):
            async with self._http.post(
                self._url, data=payload, headers=headers, **self._post_options
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    raise self._error(operation, response.status, response.headers, body)
        return body

    @staticmethod
    def _error(operation: str, status: int, headers: CIMultiDictProxy[str], body: bytes) -> Exception:
        if status < 400:
            return RedirectRefused(
                status=status,
                location=headers.get("Location"),
                operation=operation,
                request_id=headers.get("x-amzn-requestid"),
            )
        error = error_from_response(operation, status, headers, body)
        if is_clock_skew(error):
            offset = clock_offset(headers.get("Date"))
            if offset is not None:
                return _ClockSkewed(error, offset)
        return error

    async def send_batch(self, queue_url: str, entries: Sequence[SendEntry]) -> BatchResult[SentMessage]:
        body = await self._call("SendMessageBatch", _encode(_SendBatch(queue_url, entries)))
        with _parsing("SendMessageBatch"):
            return _decode_sent(body)

    async def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None
    ) -> list[ReceivedMessage]:
        payload = _encode(_Receive(queue_url, max_messages, wait_seconds, _ALL, _ALL, visibility_timeout))
        body = await self._call("ReceiveMessage", payload)
        with _parsing("ReceiveMessage"):
            return _decode_messages(body).Messages or []

    async def delete_batch(self, queue_url: str, entries: Sequence[ReceiptEntry]) -> BatchResult[str]:
        body = await self._call("DeleteMessageBatch", _encode(_DeleteBatch(queue_url, entries)))
        with _parsing("DeleteMessageBatch"):
            result = _decode_ids(body)
        return BatchResult(succeeded=[ok.id for ok in result.succeeded], failed=result.failed)

    async def change_visibility_batch(
        self, queue_url: str, entries: Sequence[VisibilityEntry]
    ) -> BatchResult[str]:
        payload = _encode(_VisibilityBatch(queue_url, entries))
        body = await self._call("ChangeMessageVisibilityBatch", payload)
        with _parsing("ChangeMessageVisibilityBatch"):
            result = _decode_ids(body)
        return BatchResult(succeeded=[ok.id for ok in result.succeeded], failed=result.failed)


def http_session(
    settings: ConnectionSettings, connector: aiohttp.BaseConnector | None = None
) -> aiohttp.ClientSession:
    """The pooled HTTP session of the lean data plane: the botocore client's pool size and timeouts.

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
