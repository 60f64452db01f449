"""The two transports of the hot SQS calls: every request validly signed, identical errors, selection."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import qfan

from .helpers import AppFactory
from .support.proxy import Proxy, RecordedRequest, fail_entry, reset_before, server_error, throttle

TOKEN = "session/token+with=odd chars"
SIGNED = ("Content-Type", "X-Amz-Target", "x-amzn-query-mode", "Host")


def botocore_authorization(request: RecordedRequest, credentials: Credentials) -> str:
    """The Authorization header botocore's SigV4Auth gives this request at the time it claims."""
    headers = {name: value for name in SIGNED if (value := request.header(name)) is not None}
    url = f"http://{request.header('Host')}{request.path}"
    prepared = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
    claimed = datetime.datetime.strptime(request.header("X-Amz-Date") or "", "%Y%m%dT%H%M%SZ")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "get_current_datetime", lambda: claimed)
        auth.SigV4Auth(credentials, "sqs", "us-east-1").add_auth(prepared)
    return str(prepared.headers["Authorization"])


async def test_every_sqs_request_carries_botocores_signature(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """The emulators don't check signatures, so the test does: each request, re-signed by botocore with the
    same credentials and clock, has the very Authorization header the client sent (session token and a
    non-ASCII body included)."""
    app = make_app(
        endpoint_url=proxy.endpoint_url,
        access_key_id="AKIDTEST",
        secret_access_key="s3cr3t",
        session_token=TOKEN,
    )
    queue = app.queue(unique_name())
    async with app:
        await queue.send_many(["naïve café — 東京 🚀", "plain"], attributes={"kind": "ünïcode"})
        messages = await queue.receive(max_messages=10, wait=5)
        assert sorted(m.body for m in messages) == ["naïve café — 東京 🚀", "plain"]
        for message in messages:
            await message.ack()
    credentials = Credentials("AKIDTEST", "s3cr3t", TOKEN)
    requests = [r for r in proxy.requests if r.target is not None]
    operations = {r.operation for r in requests}
    assert {"SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"} <= operations
    for request in requests:
        assert request.header("X-Amz-Security-Token") == TOKEN, request.operation
        assert request.header("Authorization") == botocore_authorization(request, credentials), (
            request.operation
        )


def outcome(error: qfan.QfanError | None) -> tuple[Any, ...]:
    if error is None:
        return ("no error",)
    if isinstance(error, qfan.AwsError):
        return type(error), error.code, error.operation, error.sender_fault, error.request_id is not None
    return (type(error),)


async def outcomes(endpoint_url: str, transport: str, queue_name: str, proxy: Proxy) -> list[tuple[Any, ...]]:
    """What one transport reports for injected faults on each hot call, then for calls on a deleted queue."""
    app = qfan.App(
        "errors",
        endpoint_url=endpoint_url,
        region="us-east-1",
        transport=transport,  # type: ignore[arg-type]
        retry=qfan.RetryPolicy(attempts=1),
    )
    queue = app.queue(queue_name)
    seen: list[tuple[Any, ...]] = []

    async def attempt(call: Callable[[], Awaitable[object]]) -> None:
        try:
            await call()
            seen.append(outcome(None))
        except qfan.QfanError as error:
            seen.append(outcome(error))

    async with app:
        await queue.send_many(["one", "two"])
        first, second = await queue.receive(max_messages=2, wait=5)
        proxy.inject("SendMessageBatch", throttle())
        await attempt(lambda: queue.send("throttled"))
        proxy.inject("ReceiveMessage", server_error(503))
        await attempt(lambda: queue.receive(wait=0))
        proxy.inject("DeleteMessageBatch", reset_before(hard=True))
        await attempt(first.ack)
        proxy.inject("ChangeMessageVisibilityBatch", fail_entry("0", "ReceiptHandleIsInvalid"))
        await attempt(second.nack)
        await queue.delete()
        for call in (lambda: queue.send("gone"), lambda: queue.receive(wait=0), second.ack):
            await attempt(call)  # emulators differ here; the transports must not
    return seen


async def test_errors_are_identical_on_both_transports(proxy: Proxy, unique_name: Callable[..., str]) -> None:
    fast = await outcomes(proxy.endpoint_url, "fast", unique_name(), proxy)
    botocore = await outcomes(proxy.endpoint_url, "botocore", unique_name(), proxy)
    assert fast == botocore
    assert fast[0] == (qfan.Throttled, "RequestThrottled", "SendMessageBatch", True, True)
    assert fast[1] == (qfan.ServiceUnavailable, "InternalError", "ReceiveMessage", False, True)
    assert fast[2] == (qfan.TransportError,)
    assert fast[3][:4] == (
        qfan.ReceiptHandleInvalid,
        "ReceiptHandleIsInvalid",
        "ChangeMessageVisibilityBatch",
        True,
    )


def test_transport_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QFAN_TRANSPORT", raising=False)
    assert qfan.App().transport == "fast"
    assert qfan.App(transport="botocore").transport == "botocore"
    monkeypatch.setenv("QFAN_TRANSPORT", "botocore")
    assert qfan.App().transport == "botocore"
    assert qfan.App(transport="fast").transport == "fast"
    with pytest.raises(qfan.ConfigError, match="transport must be one of"):
        qfan.App(transport="grpc")  # type: ignore[arg-type]
    monkeypatch.setenv("QFAN_TRANSPORT", "http2")
    with pytest.raises(qfan.ConfigError, match="QFAN_TRANSPORT must be one of"):
        qfan.App()


CREDENTIAL_PROCESS = """\
import datetime, json, uuid
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
print(json.dumps({"Version": 1, "AccessKeyId": "AKIDROTATING", "SecretAccessKey": uuid.uuid4().hex,
                  "SessionToken": "token-" + uuid.uuid4().hex, "Expiration": expires.isoformat()}))
"""


async def test_refreshing_credentials_from_the_aws_chain(
    make_app: AppFactory,
    proxy: Proxy,
    unique_name: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Credentials come from the session's chain and are refreshed when due: a ``credential_process`` whose
    credentials expire within botocore's mandatory-refresh window yields new ones for every request."""
    script = tmp_path / "credentials.py"
    script.write_text(CREDENTIAL_PROCESS)
    config = tmp_path / "config"
    config.write_text(f"[default]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    async with app:
        proxy.clear()
        await queue.send("one")
        await queue.send("two")
        assert await queue.receive(max_messages=10, wait=5)
    tokens = [r.header("X-Amz-Security-Token") for r in proxy.requests]
    assert [r.operation for r in proxy.requests] == ["SendMessageBatch", "SendMessageBatch", "ReceiveMessage"]
    assert all(tokens)
    assert len(set(tokens)) == 3  # a fresh set of credentials for every request
    for request in proxy.requests:
        assert (request.header("Authorization") or "").startswith("AWS4-HMAC-SHA256 Credential=AKIDROTATING/")


ERROR_ANSWERS = [
    (  # what AWS and MiniStack send: the query-compatible header wins
        400,
        {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender", "x-amzn-RequestId": "r-1"},
        b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}',
    ),
    (
        400,
        {"x-amzn-RequestId": "r-2"},
        b'{"__type":"com.amazonaws.sqs#InvalidParameterValue","Message":"bad"}',
    ),
    (400, {}, b'{"__type":"RequestThrottled:http://internal.amazon.com/coral/x/","message":"slow down"}'),
    (500, {"x-amzn-query-error": "InternalError;Receiver"}, b'{"__type":"com.amazonaws.sqs#InternalError"}'),
    (502, {}, b"test proxy: upstream failed: ConnectionResetError()"),
    (503, {"x-amzn-RequestId": "r-3"}, b""),
    (504, {}, b"<html><body>Gateway Timeout</body></html>"),
    (403, {"x-amzn-query-error": ";Sender"}, b'{"__type":"com.amazonaws.sqs#AccessDenied","message":"no"}'),
]


@pytest.mark.parametrize(("status", "headers", "body"), ERROR_ANSWERS)
def test_error_answers_read_as_botocore_reads_them(status: int, headers: dict[str, str], body: bytes) -> None:
    """The lean path parses an error answer into the same qfan error the botocore path raises for it."""
    from botocore.exceptions import ClientError
    from botocore.parsers import create_parser
    from multidict import CIMultiDict, CIMultiDictProxy

    from qfan._transport import map_aws_errors
    from qfan._transport._sqs_json import error_from_response

    response = {"status_code": status, "headers": {k.lower(): v for k, v in headers.items()}, "body": body}
    parsed = create_parser("json").parse(response, None)
    with pytest.raises(qfan.AwsError) as botocore_error, map_aws_errors("SendMessageBatch"):
        raise ClientError(parsed, "SendMessageBatch")  # type: ignore[arg-type]
    lean = error_from_response("SendMessageBatch", status, CIMultiDictProxy(CIMultiDict(headers)), body)
    expected = botocore_error.value
    assert (type(lean), lean.code, str(lean), lean.operation, lean.sender_fault, lean.request_id) == (
        type(expected),
        expected.code,
        str(expected),
        expected.operation,
        expected.sender_fault,
        expected.request_id,
    )
