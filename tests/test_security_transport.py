"""Security properties of the transports (issue #19), each checked over real loopback HTTP.

A. No redirect is ever followed (it would carry the signed request and session token elsewhere): a 3xx is
   a typed ``RedirectRefused`` naming the ``Location``, on both SQS planes, SNS and S3.
B. The fast SQS plane connects as botocore does: through ``HTTP_PROXY`` unless ``NO_PROXY`` says otherwise,
   trusting the CA bundle from ``AWS_CA_BUNDLE`` or the profile's ``ca_bundle``.
C. An offloaded payload is read only up to the size limit, whatever length the server claims.
D. The fast plane corrects its clock from the server's ``Date`` after a clock-skew error and retries once.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from aiohttp import web

import qfan
from qfan._transport import (
    ConnectionSettings,
    ReceiptEntry,
    SendEntry,
    VisibilityEntry,
    open_s3,
    open_sns,
    open_sqs_planes,
)

from .support.loopback import Seen, Server, forwarding, self_signed_certificate, serve

TOKEN = "session-token-that-must-stay-home"
QUEUE_PATH = "/000000000000/secure"
FAST_RETRY = qfan.RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05)
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE")


@pytest.fixture(autouse=True)
def no_proxy_from_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy and CA settings of the machine running the suite must not leak into these tests."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def settings_for(url: str) -> ConnectionSettings:
    return ConnectionSettings(
        region="us-east-1",
        endpoint_urls={"sqs": url, "sns": url, "s3": url},
        access_key_id="AKIDSECURITY",
        secret_access_key="s3cr3t",
        session_token=TOKEN,
    )


def app_for(endpoint_url: str, transport: str, **kwargs: Any) -> qfan.App:
    kwargs.setdefault("retry", FAST_RETRY)
    return qfan.App(
        "security", endpoint_url=endpoint_url, region="us-east-1", transport=cast(Any, transport), **kwargs
    )


def json_answer(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": "req-1",
            **(headers or {}),
        },
    )


# -- A. redirects -------------------------------------------------------------------------------------------

SqsCall = Callable[[Any, str], Awaitable[object]]
SQS_DATA_CALLS: dict[str, SqsCall] = {
    "SendMessageBatch": lambda data, url: data.send_batch(url, [SendEntry("0", "secret body")]),
    "ReceiveMessage": lambda data, url: data.receive(
        url, max_messages=1, wait_seconds=0, visibility_timeout=None
    ),
    "DeleteMessageBatch": lambda data, url: data.delete_batch(url, [ReceiptEntry("0", "handle")]),
    "ChangeMessageVisibilityBatch": lambda data, url: data.change_visibility_batch(
        url, [VisibilityEntry("0", "handle", 30)]
    ),
}


@asynccontextmanager
async def redirecting(status: int = 307) -> AsyncIterator[tuple[Server, Server]]:
    """An endpoint answering every request with ``status`` to a second server, which records what reaches
    it (and would answer an SQS-looking success, so that a followed redirect is not caught by accident)."""

    async def elsewhere_answer(request: web.BaseRequest, body: bytes) -> web.StreamResponse:
        return json_answer({"Messages": [], "Successful": [], "Failed": [], "QueueUrl": "x", "Topics": []})

    async with serve(elsewhere_answer) as elsewhere:
        location = f"{elsewhere.url}/collect"

        async def redirect(request: web.BaseRequest, body: bytes) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location, "x-amzn-RequestId": "req-r"})

        async with serve(redirect) as endpoint:
            yield endpoint, elsewhere


def assert_refused(error: qfan.RedirectRefused, elsewhere: Server, status: int, operation: str) -> None:
    assert elsewhere.seen == [], "the redirect was followed: the signed request reached another server"
    assert error.location == f"{elsewhere.url}/collect"
    assert error.location in str(error)
    assert error.status == status
    assert error.operation == operation
    assert not error.transient


@pytest.mark.parametrize("operation", list(SQS_DATA_CALLS))
async def test_sqs_data_plane_refuses_redirects(transport: str, operation: str) -> None:
    async with (
        redirecting() as (endpoint, elsewhere),
        open_sqs_planes(settings_for(endpoint.url), cast(Any, transport)) as (data, _control),
    ):
        with pytest.raises(qfan.RedirectRefused) as refused:
            await SQS_DATA_CALLS[operation](data, endpoint.url + QUEUE_PATH)
    assert_refused(refused.value, elsewhere, 307, operation)
    assert endpoint.operations() == [operation]


async def test_app_does_not_retry_a_redirect(transport: str) -> None:
    """Through the App and its retry policy: the redirect is raised at once, not retried."""
    async with redirecting() as (endpoint, elsewhere):
        app = app_for(
            endpoint.url,
            transport,
            session_token=TOKEN,
            access_key_id="AKIDSECURITY",
            secret_access_key="s3cr3t",
            retry=qfan.RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.02),
        )
        app.queue("secure")
        with pytest.raises(qfan.RedirectRefused) as refused:
            async with app:
                pass  # declaring the queue is the first request
    assert elsewhere.seen == []
    assert len(endpoint.seen) == 1
    assert refused.value.location == f"{elsewhere.url}/collect"


STATUSES = [301, 302, 303, 307, 308]


async def _sqs_control(settings: ConnectionSettings) -> None:
    async with open_sqs_planes(settings, "fast") as (_data, control):
        await control.get_queue_url("secure")


async def _sns_publish(settings: ConnectionSettings) -> None:
    async with open_sns(settings) as sns:
        await sns.find_topic("secure")


async def _s3_get(settings: ConnectionSettings) -> None:
    async with open_s3(settings) as s3:
        await s3.get_object("bucket", "key", max_size=1024)


async def _s3_put(settings: ConnectionSettings) -> None:
    async with open_s3(settings) as s3:
        await s3.put_object("bucket", "key", b"secret payload")


OTHER_CALLS = {
    "GetQueueUrl": _sqs_control,
    "ListTopics": _sns_publish,
    "GetObject": _s3_get,
    "PutObject": _s3_put,
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("operation", list(OTHER_CALLS))
async def test_botocore_clients_refuse_redirects(operation: str, status: int) -> None:
    """The SQS control plane, SNS and S3 (aiobotocore, whatever the data plane's transport)."""
    async with redirecting(status) as (endpoint, elsewhere):
        with pytest.raises(qfan.RedirectRefused) as refused:
            await OTHER_CALLS[operation](settings_for(endpoint.url))
    assert_refused(refused.value, elsewhere, status, operation)
    assert len(endpoint.seen) == 1


# -- B. proxies and CA bundles ------------------------------------------------------------------------------


async def send_and_receive(app: qfan.App, name: str) -> list[str]:
    queue = app.queue(name)
    async with app:
        await queue.send("through the right door")
        messages = await queue.receive(max_messages=10, wait=5)
        for message in messages:
            await message.ack()
    return [str(message.body) for message in messages]


def data_plane_requests(seen: list[Seen]) -> set[str | None]:
    return {request.operation for request in seen} & {
        "SendMessageBatch",
        "ReceiveMessage",
        "DeleteMessageBatch",
    }


@pytest.mark.parametrize("bypass", [False, True], ids=["proxied", "no_proxy"])
async def test_environment_proxy_is_used_by_both_planes(
    transport: str,
    endpoint_url: str,
    unique_name: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    bypass: bool,
) -> None:
    async with forwarding(endpoint_url) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if bypass:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        app = app_for(endpoint_url, transport)
        assert await send_and_receive(app, unique_name()) == ["through the right door"]
    if bypass:
        assert proxy.seen == []
        return
    assert data_plane_requests(proxy.seen) == {"SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"}
    assert "GetQueueUrl" in proxy.operations() or "CreateQueue" in proxy.operations()
    for request in proxy.seen:  # a forward proxy is sent the absolute URI
        assert request.target == f"{endpoint_url}/", request.target


@pytest.mark.parametrize("source", ["AWS_CA_BUNDLE", "profile ca_bundle"])
async def test_ca_bundle_is_trusted_by_both_planes(
    transport: str,
    endpoint_url: str,
    unique_name: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
) -> None:
    """A TLS front whose self-signed certificate is trusted only through the AWS CA-bundle setting."""
    certificate = self_signed_certificate(tmp_path)
    if source == "AWS_CA_BUNDLE":
        monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate.pem))
    else:
        config = tmp_path / "config"
        config.write_text(f"[default]\nca_bundle = {certificate.pem}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    async with forwarding(endpoint_url, tls=certificate.server_context) as front:
        app = app_for(front.url, transport)
        assert await send_and_receive(app, unique_name()) == ["through the right door"]
    assert data_plane_requests(front.seen) == {"SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"}


async def test_untrusted_certificate_is_refused(
    transport: str, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    """Without the bundle the same front is refused: the test above does depend on the bundle."""
    certificate = self_signed_certificate(tmp_path)
    async with forwarding(endpoint_url, tls=certificate.server_context) as front:
        app = app_for(front.url, transport)
        with pytest.raises(qfan.TransportError, match=r"(?i)certificate"):
            await send_and_receive(app, unique_name())
    assert front.seen == []


# -- C. capped reads of offloaded payloads ------------------------------------------------------------------

CHUNK = 64 * 1024
STREAMED = 64 * 1024 * 1024  # far beyond any socket buffer: a reader that stops early stops the writer


class Streamer:
    """An S3-ish GetObject that streams ``STREAMED`` bytes, with or without announcing the length."""

    def __init__(self, *, announce_length: bool) -> None:
        self.announce_length = announce_length
        self.written = 0
        self.completed = False
        self.finished = asyncio.Event()

    async def __call__(self, request: web.BaseRequest, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "ETag": '"e"'})
        if self.announce_length:
            response.content_length = STREAMED
        else:
            response.enable_chunked_encoding()  # no Content-Length: botocore reports ContentLength 0
        try:
            await response.prepare(request)
            chunk = b"x" * CHUNK
            while self.written < STREAMED:
                await response.write(chunk)
                self.written += CHUNK
            await response.write_eof()
            self.completed = True
        except ConnectionError:
            pass  # the reader hung up: what this test wants (else the server cancels this handler)
        finally:
            self.finished.set()
        return response


@pytest.mark.parametrize("announce_length", [False, True], ids=["chunked_no_length", "honest_length"])
async def test_offloaded_fetch_stops_reading_past_the_limit(announce_length: bool) -> None:
    streamer = Streamer(announce_length=announce_length)
    async with serve(streamer) as server, open_s3(settings_for(server.url)) as s3:
        stored = await s3.get_object("bucket", "big", max_size=1000)
        with anyio.fail_after(30):
            await streamer.finished.wait()
    assert stored.data is None
    assert stored.size > 1000
    assert not streamer.completed, "the whole object was read although it exceeds max_size"
    assert streamer.written < STREAMED


async def test_offloaded_fetch_within_the_limit_is_whole() -> None:
    """The capped reader still returns a chunked object under the limit, byte for byte."""

    async def small(request: web.BaseRequest, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"hello ", b"chunked ", b"world"):
            await response.write(part)
        await response.write_eof()
        return response

    async with serve(small) as server, open_s3(settings_for(server.url)) as s3:
        stored = await s3.get_object("bucket", "small", max_size=19)
    assert stored.data == b"hello chunked world"
    assert stored.content_type == "text/plain"


# -- D. clock skew ------------------------------------------------------------------------------------------

SERVER_TIME = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)  # the fake service's clock at STARTED
STARTED = datetime.datetime.now(datetime.UTC)
SKEW_ERRORS = {
    "RequestTimeTooSkewed": (400, {"__type": "com.amazonaws.sqs#RequestTimeTooSkewed", "message": "skewed"}),
    "signature expired": (
        403,
        {
            "__type": "com.amazon.coral.service#InvalidSignatureException",
            "message": "Signature expired: 20260101T000000Z is now earlier than 20291231T235500Z "
            "(20300101T000000Z - 5 min.)",
        },
    ),
    "too skewed": (
        403,
        {
            "__type": "com.amazonaws.sqs#SignatureDoesNotMatch",
            "message": "The difference between the request time and the current time is too skewed",
        },
    ),
}


class SkewedServer:
    """Answers with a clock-skew error (``skewed`` times), else an empty receive; its clock says 2030."""

    def __init__(self, error: tuple[int, dict[str, str]], skewed: int = 1) -> None:
        self.error = error
        self.skewed = skewed

    async def __call__(self, request: web.BaseRequest, body: bytes) -> web.StreamResponse:
        elapsed = datetime.datetime.now(datetime.UTC) - STARTED
        date = email.utils.format_datetime(SERVER_TIME + elapsed, usegmt=True)
        if self.skewed:
            self.skewed -= 1
            status, payload = self.error
            return json_answer(payload, status, {"Date": date})
        return json_answer({"Messages": []}, headers={"Date": date})


def amz_dates(server: Server) -> list[datetime.datetime]:
    return [
        datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
        for request in server.seen
    ]


async def receive_once(data: Any) -> object:
    return await data.receive(QUEUE_PATH, max_messages=1, wait_seconds=0, visibility_timeout=None)


def near_server_time(when: datetime.datetime) -> bool:
    """Within a generous minute of the server's clock (its 2030 start plus the time the test has run)."""
    expected = SERVER_TIME + (datetime.datetime.now(datetime.UTC) - STARTED)
    return abs(when - expected) < datetime.timedelta(minutes=1)


@pytest.mark.parametrize("error", list(SKEW_ERRORS))
async def test_fast_plane_corrects_clock_skew_and_retries_once(error: str) -> None:
    async with (
        serve(SkewedServer(SKEW_ERRORS[error])) as server,
        open_sqs_planes(settings_for(server.url), "fast") as (data, _control),
    ):
        assert await receive_once(data) == []
        first, second = amz_dates(server)
        assert not near_server_time(first), "the first request is signed with the local clock"
        assert near_server_time(second), f"re-signed at {second}, not at the server's time"
        assert f"/{second:%Y%m%d}/us-east-1/sqs/aws4_request" in server.seen[1].headers["Authorization"]
        # The offset is kept: the next call is signed with the corrected clock from the start.
        assert await receive_once(data) == []
    assert len(server.seen) == 3
    assert near_server_time(amz_dates(server)[2])


async def test_clock_skew_is_retried_only_once() -> None:
    async with (
        serve(SkewedServer(SKEW_ERRORS["signature expired"], skewed=5)) as server,
        open_sqs_planes(settings_for(server.url), "fast") as (data, _control),
    ):
        with pytest.raises(qfan.AwsError, match="Signature expired") as refused:
            await receive_once(data)
    assert refused.value.code == "InvalidSignatureException"
    assert len(server.seen) == 2


async def test_other_signature_errors_are_not_retried() -> None:
    wrong_key = (
        403,
        {
            "__type": "com.amazonaws.sqs#SignatureDoesNotMatch",
            "message": "The request signature we calculated",
        },
    )
    async with (
        serve(SkewedServer(wrong_key)) as server,
        open_sqs_planes(settings_for(server.url), "fast") as (data, _control),
    ):
        with pytest.raises(qfan.AccessDenied):
            await receive_once(data)
    assert len(server.seen) == 1
