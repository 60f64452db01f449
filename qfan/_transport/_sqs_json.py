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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import msgspec
from multidict import CIMultiDictProxy

from .._exceptions import AwsError
from ._errors import error_for_code
from ._signed import SignedClient
from ._types import (
    BatchResult,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    VisibilityEntry,
)

_CONTENT_TYPE = "application/x-amz-json-1.0"
_OPERATIONS = ("SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")
_ALL = ("All",)


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


class FastSqs:
    """The SQS data plane over aiohttp: one signed POST per call, no botocore on the way.

    Args:
        client: signed posts to the SQS endpoint (service ``sqs``, errors read by
            :func:`error_from_response`).
    """

    def __init__(self, client: SignedClient) -> None:
        self._client = client
        host = self._client.host
        self._headers = {
            operation: {
                "content-type": _CONTENT_TYPE,
                "host": host,
                "x-amz-target": f"AmazonSQS.{operation}",
                "x-amzn-query-mode": "true",
            }
            for operation in _OPERATIONS
        }

    async def _call(self, operation: str, payload: bytes) -> bytes:
        return await self._client.call(operation, payload, self._headers[operation])

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
