"""A loopback HTTP reverse proxy between qfan and the emulator that records requests and injects faults.

It runs in its own thread and event loop, so the test's event loop is never blocked by it. Faults are
armed per operation for a number of requests: an SQS operation is named by the ``X-Amz-Target`` header's
``AmazonSQS.<Op>``; an S3 request, which has no target, by its HTTP method as ``s3:GET``, ``s3:PUT``, ...
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import aiohttp
from aiohttp import web

FaultKind = Literal["throttle", "server_error", "reset_before", "reset_after", "fail_entry", "corrupt_body"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "content-encoding",
}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 400
    entry_id: str = ""
    code: str = ""
    sender_fault: bool = True


def throttle() -> Fault:
    """SQS JSON-protocol throttling: HTTP 400 with a RequestThrottled code."""
    return Fault("throttle", 400)


def server_error(status: int = 500) -> Fault:
    """A 5xx InternalError."""
    return Fault("server_error", status)


def reset_before() -> Fault:
    """Drop the connection without forwarding: the server never sees the request."""
    return Fault("reset_before")


def reset_after() -> Fault:
    """Forward the request (the server acts on it), then drop the connection without answering."""
    return Fault("reset_after")


def fail_entry(entry_id: str, code: str = "InvalidParameterValue", *, sender_fault: bool = True) -> Fault:
    """Forward the batch, then report entry ``entry_id`` as failed, the way SQS reports a per-entry failure.

    The server did process the entry; the client is told it failed. That is exactly the client's view of a
    per-entry failure, which is what the tests exercise.
    """
    return Fault("fail_entry", 200, entry_id=entry_id, code=code, sender_fault=sender_fault)


def corrupt_body() -> Fault:
    """Forward a ReceiveMessage, then alter the first message's body (but not its reported MD5)."""
    return Fault("corrupt_body", 200)


def operation_of(target: str | None, method: str) -> str:
    """``SendMessageBatch`` for SQS (from the target header); ``s3:<METHOD>`` for S3."""
    return f"s3:{method}" if target is None else target.rpartition(".")[2]


@dataclass(frozen=True)
class RecordedRequest:
    target: str | None
    body: bytes
    status: int | None
    fault: FaultKind | None
    method: str = "POST"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def operation(self) -> str:
        return operation_of(self.target, self.method)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Proxy:
    """Records every request; answers armed ones with faults instead of (or after) forwarding."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.endpoint_url = ""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: dict[str, list[Fault]] = {}

    # -- test-facing API (called from the test's thread) ------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    def s3_calls(self, bucket: str, method: str | None = None) -> list[RecordedRequest]:
        """S3 requests (path-style) on ``bucket`` or its objects, optionally of one HTTP method."""
        return [
            r
            for r in self.requests
            if r.target is None
            and r.path.split("?")[0].split("/")[1] == bucket
            and (method is None or r.method == method)
        ]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    def inject(self, operation: str, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._faults.setdefault(operation, []).extend([fault] * times)

    # -- the proxy itself (runs in the proxy's thread) ------------------------------------------------

    def _take_fault(self, operation: str | None) -> Fault | None:
        with self._lock:
            armed = self._faults.get(operation or "")
            return armed.pop(0) if armed else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target")
        operation = operation_of(target, request.method)
        fault = self._take_fault(operation)
        kind = None if fault is None else fault.kind

        def record(status: int | None) -> None:
            headers = tuple(request.headers.items())
            self._record(
                RecordedRequest(
                    target, body, status, kind, request.method, request.rel_url.raw_path_qs, headers
                )
            )

        if fault is not None and fault.kind in ("throttle", "server_error"):
            record(fault.status)
            return self._s3_error(fault) if target is None else self._error(fault)
        if fault is not None and fault.kind == "reset_before":
            record(None)
            return self._drop(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        url = self.upstream + request.rel_url.raw_path_qs
        async with self._session.request(request.method, url, headers=headers, data=body) as upstream:
            payload = await upstream.read()
            status = upstream.status
            reply_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        record(status)
        if fault is not None and fault.kind == "fail_entry":
            payload = self._fail_entry(payload, fault)
        elif fault is not None and fault.kind == "corrupt_body":
            payload = self._corrupt_body(payload)
        elif fault is not None:  # reset_after: the server acted, the client never hears of it
            return self._drop(request)
        return web.Response(status=status, body=payload, headers=reply_headers)

    @staticmethod
    def _fail_entry(payload: bytes, fault: Fault) -> bytes:
        result = json.loads(payload)
        result["Successful"] = [ok for ok in result.get("Successful", []) if ok["Id"] != fault.entry_id]
        failure = {
            "Id": fault.entry_id,
            "SenderFault": fault.sender_fault,
            "Code": fault.code,
            "Message": "failed by the test proxy",
        }
        result["Failed"] = [*result.get("Failed", []), failure]
        return json.dumps(result).encode()

    @staticmethod
    def _corrupt_body(payload: bytes) -> bytes:
        result = json.loads(payload)
        messages = result.get("Messages") or []
        if messages:
            messages[0]["Body"] = messages[0]["Body"] + " (altered in transit)"
        return json.dumps(result).encode()

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=500)

    @staticmethod
    def _error(fault: Fault) -> web.Response:
        request_id = str(uuid.uuid4())
        if fault.kind == "throttle":
            code, query_code, fault_side = "RequestThrottled", "RequestThrottled", "Sender"
        else:
            code, query_code, fault_side = "InternalError", "InternalError", "Receiver"
        return web.Response(
            status=fault.status,
            body=json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": "injected by the test proxy"}),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-query-error": f"{query_code};{fault_side}",
                "x-amzn-RequestId": request_id,
            },
        )

    @staticmethod
    def _s3_error(fault: Fault) -> web.Response:
        code = "SlowDown" if fault.kind == "throttle" else "InternalError"
        status = 503 if fault.kind == "throttle" else fault.status
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
            f"<RequestId>{uuid.uuid4()}</RequestId></Error>"
        )
        return web.Response(status=status, body=xml.encode(), headers={"Content-Type": "application/xml"})

    async def _serve(self, started: threading.Event, stop: asyncio.Event) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.endpoint_url = f"http://{host}:{port}"
        started.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await self._session.close()


@contextmanager
def running_proxy(upstream: str) -> Iterator[Proxy]:
    """Run a proxy in front of ``upstream`` for the duration of the block."""
    proxy = Proxy(upstream)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy._serve(started, stop))
        loop.close()

    thread = threading.Thread(target=run, name="qfan-test-proxy", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("test proxy did not start")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
