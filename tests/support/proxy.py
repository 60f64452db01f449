"""A loopback HTTP reverse proxy between the client under test and the emulator: records, and injects faults.

Emulators answer correctly; the proxy is how tests see what actually went over the wire (how many
``SendMessageBatch`` calls, with which bodies) and make AWS misbehave on cue (throttling, 5xx, connections
dropped before or after the server acted, per-entry batch failures, corrupted bodies).

It runs its own event loop in a background thread, so the test's event loop (pytest-asyncio / anyio) is
never blocked by it and never shares state with it. Faults are armed per SQS operation, matched on the
``X-Amz-Target`` header (``AmazonSQS.<Op>``), or per S3 HTTP method as ``s3:GET``, ``s3:PUT``, ``s3:DELETE``
(S3 requests have no target; they are answered with S3's XML errors), and consumed in order by the next
matching requests, so a
test that arms ``n`` faults gets exactly ``n`` faulted requests. Every request is recorded before the client
can see its outcome, so after an awaited call returns its record is already in ``proxy.requests``.

Besides faults armed one by one, a :class:`FaultPlan` faults a *rate* of all requests with a seeded mix of
kinds (5xx, throttling in each service's own error shape, resets before and after the server acted, added
latency, slow bodies). Its ``random.Random(seed)`` is consulted once per request in arrival order, so the
same seed gives the same sequence of decisions; with concurrent clients the arrival order itself varies from
run to run, so which request gets which decision can differ. ``proxy.injected`` counts what was injected.
SNS requests (query protocol, ``Action=`` in a form body) are told apart from S3 ones and get SNS's XML
error shape; they are armed and counted as ``sns:<Action>``.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

FaultKind = Literal[
    "throttle",
    "server_error",
    "reset_before",
    "reset_after",
    "fail_entry",
    "corrupt_body",
    "latency",
    "slow_body",
    "respond",
]

# Hop-by-hop headers (RFC 9110 7.6.1) plus those the proxy must recompute itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",  # the proxy already answered any 100-continue itself
        "host",
        "content-length",
    }
)
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")  # forward the client's only
_SQS_JSON = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class Fault:
    """What to do with a request instead of (or after) forwarding it; build one with the functions below."""

    kind: FaultKind
    status: int = 400
    entry_id: str = ""
    code: str = ""
    sender_fault: bool = True
    hard: bool = False  # for resets: TCP RST instead of an orderly close without a response
    delay: float = 0.0  # latency: before forwarding; slow_body: between chunks of the answer
    answer: str = ""  # respond: the JSON body sent instead of the server's

    @property
    def forwards(self) -> bool:
        """Whether the upstream sees (and acts on) the request."""
        return self.kind in ("reset_after", "fail_entry", "corrupt_body", "latency", "slow_body")


def throttle() -> Fault:
    """SQS throttling in the JSON protocol: HTTP 400, ``RequestThrottled`` (a botocore throttling code)."""
    return Fault("throttle", 400)


def server_error(status: int = 500) -> Fault:
    """An ``InternalError`` with HTTP ``status`` (5xx): transient, the server did nothing."""
    return Fault("server_error", status)


def reset_before(*, hard: bool = False) -> Fault:
    """Drop the connection without forwarding: the server never sees the request.

    ``hard=False`` closes the connection without answering (aiobotocore: ``ConnectionClosedError``);
    ``hard=True`` sends a TCP RST (aiobotocore: ``EndpointConnectionError``).
    """
    return Fault("reset_before", hard=hard)


def reset_after(*, hard: bool = False) -> Fault:
    """Forward the request (the server acts on it), then drop the connection without answering."""
    return Fault("reset_after", hard=hard)


def fail_entry(entry_id: str, code: str = "InvalidParameterValue", *, sender_fault: bool = True) -> Fault:
    """Forward the batch, then report entry ``entry_id`` as failed, the way SQS reports a per-entry failure.

    The server did process the entry; the client is told it failed. That is exactly the client's view of a
    per-entry failure, which is what the tests exercise.
    """
    return Fault("fail_entry", 200, entry_id=entry_id, code=code, sender_fault=sender_fault)


def corrupt_body() -> Fault:
    """Forward a ReceiveMessage, then alter the first message's body (but not its reported MD5)."""
    return Fault("corrupt_body", 200)


def latency(seconds: float) -> Fault:
    """Wait ``seconds`` before forwarding; the answer is the server's own."""
    return Fault("latency", 200, delay=seconds)


def respond(answer: Mapping[str, object]) -> Fault:
    """Answer an SQS request with ``answer`` (JSON, HTTP 200) without forwarding it: a stand-in for an
    operation the emulator lacks (e.g. ``StartMessageMoveTask``, ``ListMessageMoveTasks``)."""
    return Fault("respond", 200, answer=json.dumps(answer))


def slow_body(chunk_delay: float = 0.05) -> Fault:
    """Forward, then trickle the server's answer to the client in small chunks, ``chunk_delay`` apart."""
    return Fault("slow_body", 200, delay=chunk_delay)


DEFAULT_MIX: Mapping[FaultKind, float] = {
    "server_error": 0.2,
    "throttle": 0.2,
    "reset_before": 0.15,
    "reset_after": 0.15,
    "latency": 0.15,
    "slow_body": 0.15,
}


@dataclass
class FaultPlan:
    """Fault ``rate`` of requests at random, kinds drawn from ``mix`` (weights), deterministic by ``seed``.

    ``only`` limits the plan to requests whose label (``SendMessageBatch``, ``sns:Publish``, ``s3:GET``)
    is in it; ``latency`` and ``slow_delay`` set the added wait and the pause between body chunks.
    """

    rate: float
    seed: int = 0
    mix: Mapping[FaultKind, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    only: frozenset[str] | None = None
    latency: float = 0.2
    slow_delay: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        unplanned = set(self.mix) - set(DEFAULT_MIX)
        if unplanned:
            raise ValueError(f"a plan cannot draw {sorted(unplanned)} (they need a specific request)")
        self._random = random.Random(self.seed)
        self._kinds: list[FaultKind] = list(self.mix)
        self._weights = [self.mix[kind] for kind in self._kinds]

    def decide(self, label: str) -> Fault | None:
        """The fault for the next request (one draw per request, whether or not it is eligible)."""
        roll, pick, hard = self._random.random(), self._random.random(), self._random.random() < 0.5
        if roll >= self.rate or (self.only is not None and label not in self.only):
            return None
        kind = self._random_kind(pick)
        if kind == "server_error":
            return server_error(500 if hard else 503)
        if kind == "throttle":
            return throttle()
        if kind == "reset_before":
            return reset_before(hard=hard)
        if kind == "reset_after":
            return reset_after(hard=hard)
        if kind == "latency":
            return latency(self.latency)
        return slow_body(self.slow_delay)

    def _random_kind(self, pick: float) -> FaultKind:
        total, point = sum(self._weights), pick * sum(self._weights)
        for kind, weight in zip(self._kinds, self._weights, strict=True):
            point -= weight
            if point < 0:
                return kind
        return self._kinds[-1] if total else "latency"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the proxy saw it.

    ``status`` is what the client was answered, or the upstream's status when the answer was dropped after
    forwarding (``reset_after``); ``None`` when there was no answer at all (``reset_before``).
    ``fault`` is the injected fault's kind, ``None`` for a plain forwarded request.
    """

    target: str | None
    body: bytes
    status: int | None
    fault: FaultKind | None = None
    method: str = "POST"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def operation(self) -> str | None:
        """``SendMessageBatch`` for ``AmazonSQS.SendMessageBatch``; ``None`` without an ``X-Amz-Target``."""
        return None if self.target is None else self.target.rpartition(".")[2]

    @property
    def bucket(self) -> str | None:
        """The S3 bucket a path-style S3 request addressed (``None`` for SQS requests)."""
        if self.target is not None:
            return None
        return self.path.split("?")[0].split("/")[1] or None

    def header(self, name: str) -> str | None:
        """The value of request header ``name`` (case-insensitive), ``None`` when absent."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def _operation(target: str | None) -> str | None:
    return None if target is None else target.rpartition(".")[2]


class Proxy:
    """Forwards to ``upstream``, records every request, and answers armed ones with faults.

    The public methods are called from the test's thread; the handler runs in the proxy's thread; a lock
    guards what they share.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.endpoint_url = ""  # set once listening
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._errors: list[BaseException] = []
        self._session: aiohttp.ClientSession | None = None
        self._plan: FaultPlan | None = None
        self._injected: Counter[tuple[str, FaultKind]] = Counter()

    # -- test-facing API ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request so far, in the order their outcome was decided."""
        with self._lock:
            return list(self._requests)

    def calls(self, operation: str) -> list[RecordedRequest]:
        """The requests for one SQS operation, e.g. ``calls("SendMessageBatch")``."""
        return [r for r in self.requests if r.operation == operation]

    def s3_calls(self, bucket: str, method: str | None = None) -> list[RecordedRequest]:
        """The S3 requests on ``bucket`` or its objects, optionally of one HTTP method."""
        return [r for r in self.requests if r.bucket == bucket and (method is None or r.method == method)]

    def clear(self) -> None:
        """Forget recorded requests and disarm all faults (a request in flight is still recorded later)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    def inject(self, operation: str, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` requests for ``operation`` with ``fault`` (queued after earlier ones)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.setdefault(operation, deque()).extend([fault] * times)

    def pending(self) -> dict[str, int]:
        """Armed faults not yet consumed, per operation."""
        with self._lock:
            return {op: len(faults) for op, faults in self._faults.items() if faults}

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions inside the proxy (bugs in it, not injected faults)."""
        with self._lock:
            return list(self._errors)

    # -- the proxy itself (runs in the proxy's thread) -------------------------------------------------

    def plan(self, plan: FaultPlan | None) -> None:
        """Fault requests at random by ``plan`` from now on (``None``: stop); armed faults still go first."""
        with self._lock:
            self._plan = plan

    @property
    def injected(self) -> Counter[tuple[str, FaultKind]]:
        """Faults injected so far by (request label, kind), e.g. ``("sns:Publish", "reset_after")``."""
        with self._lock:
            return Counter(self._injected)

    def _take_fault(self, label: str, method: str) -> Fault | None:
        with self._lock:
            fault = self._armed(label, method)
            if fault is None and self._plan is not None:
                fault = self._plan.decide(label)
            if fault is not None:
                self._injected[(label, fault.kind)] += 1
            return fault

    def _armed(self, label: str, method: str) -> Fault | None:
        if label.startswith("s3:"):
            armed = self._faults.get(f"s3:{method}")
            return armed.popleft() if armed else None
        for operation, armed in self._faults.items():
            if armed and operation == label:
                return armed.popleft()
        return None

    def _record(self, request: web.Request, body: bytes, status: int | None, fault: Fault | None) -> None:
        recorded = RecordedRequest(
            request.headers.get("X-Amz-Target"),
            body,
            status,
            None if fault is None else fault.kind,
            request.method,
            request.rel_url.raw_path_qs,
            tuple(request.headers.items()),
        )
        with self._lock:
            self._requests.append(recorded)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except Exception as exc:
            with self._lock:
                self._errors.append(exc)
            raise

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target")
        label = _label(target, request, body)
        fault = self._take_fault(label, request.method)
        if fault is not None and not fault.forwards:
            if fault.kind == "reset_before":
                self._record(request, body, None, fault)
                return self._drop(request, hard=fault.hard)
            if fault.kind == "respond":
                response = web.Response(
                    body=fault.answer.encode(),
                    headers={"Content-Type": _SQS_JSON, "x-amzn-RequestId": str(uuid.uuid4())},
                )
            elif target is not None:
                response = self._error(fault)
            elif label.startswith("sns:"):
                response = self._sns_error(fault)
            else:
                response = self._s3_error(fault)
            self._record(request, body, response.status, fault)
            return response
        if fault is not None and fault.kind == "latency":
            await asyncio.sleep(fault.delay)
        try:
            status, headers, payload = await self._forward(request, body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._record(request, body, 502, fault)
            return web.Response(status=502, text=f"test proxy: upstream failed: {exc!r}")
        if fault is not None and fault.kind == "reset_after":
            self._record(request, body, status, fault)
            return self._drop(request, hard=fault.hard)
        if fault is not None and fault.kind == "fail_entry":
            payload = self._fail_entry(payload, fault)
        elif fault is not None and fault.kind == "corrupt_body":
            payload = self._corrupt_body(payload)
        self._record(request, body, status, fault)
        if fault is not None and fault.kind == "slow_body":
            return await self._trickle(request, status, headers, payload, fault.delay)
        return web.Response(status=status, body=payload, headers=headers)

    @staticmethod
    async def _trickle(
        request: web.Request, status: int, headers: CIMultiDict[str], payload: bytes, delay: float
    ) -> web.StreamResponse:
        """Send the answer in about eight chunks with ``delay`` between them (a slow network or server)."""
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(payload)
        await response.prepare(request)
        step = max(1, len(payload) // 8 + 1)
        for start in range(0, len(payload), step):
            await response.write(payload[start : start + step])
            await asyncio.sleep(delay)
        await response.write_eof()
        return response

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
        assert self._session is not None
        url = self.upstream + request.rel_url.raw_path_qs
        async with self._session.request(
            request.method,
            url,
            headers=_forwardable(request.headers),
            data=body,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            return upstream.status, _forwardable(upstream.headers), payload

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
    def _drop(request: web.Request, *, hard: bool) -> web.StreamResponse:
        """Close the client's connection without an answer; aiohttp then silently skips the response below."""
        transport = request.transport
        assert transport is not None
        if hard:  # SO_LINGER 0: close() sends RST instead of FIN
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response(status=599)

    @staticmethod
    def _error(fault: Fault) -> web.Response:
        """The SQS JSON protocol's error shape; botocore takes the code from ``x-amzn-query-error``."""
        if fault.kind == "throttle":
            code, side, message = "RequestThrottled", "Sender", "Rate exceeded"
        else:
            code, side, message = "InternalError", "Receiver", "injected"
        return web.Response(
            status=fault.status,
            body=json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode(),
            headers={
                "Content-Type": _SQS_JSON,
                "x-amzn-query-error": f"{code};{side}",
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    @staticmethod
    def _sns_error(fault: Fault) -> web.Response:
        """SNS's query-protocol XML error: ``Throttling`` (400) or ``InternalError`` (5xx)."""
        if fault.kind == "throttle":
            code, side, status = "Throttling", "Sender", 400
        else:
            code, side, status = "InternalError", "Receiver", fault.status
        xml = (
            '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<Error><Type>{side}</Type><Code>{code}</Code><Message>injected by the test proxy</Message>"
            f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return web.Response(status=status, body=xml.encode(), headers={"Content-Type": "text/xml"})

    @staticmethod
    def _s3_error(fault: Fault) -> web.Response:
        """S3's XML error shape: ``SlowDown`` (503) for throttling, else ``InternalError``."""
        code, status = ("SlowDown", 503) if fault.kind == "throttle" else ("InternalError", fault.status)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
            f"<RequestId>{uuid.uuid4()}</RequestId></Error>"
        )
        return web.Response(status=status, body=xml.encode(), headers={"Content-Type": "application/xml"})

    async def serve(self, started: threading.Event, stop: asyncio.Event) -> None:
        """Listen on a free loopback port until ``stop`` is set; ``started`` is set once listening."""
        # A new upstream connection per request: a pooled keep-alive connection the emulator has meanwhile
        # closed would make forwarding fail at random.
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.endpoint_url = f"http://{host}:{port}"
            started.set()
            await stop.wait()
        finally:
            await runner.cleanup()
            await self._session.close()


def _label(target: str | None, request: web.Request, body: bytes) -> str:
    """``SendMessage`` (SQS, by target), ``sns:Publish`` (a query-protocol form) or ``s3:<METHOD>``."""
    if target is not None:
        return target.rpartition(".")[2]
    if request.content_type == "application/x-www-form-urlencoded" and body.startswith(b"Action="):
        return "sns:" + body.split(b"&", 1)[0].partition(b"=")[2].decode("ascii", "replace")
    return f"s3:{request.method}"


def _forwardable(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """The end-to-end headers: hop-by-hop ones, those named in ``Connection`` and recomputed ones dropped."""
    named = {
        token.strip().lower() for value in headers.getall("Connection", []) for token in value.split(",")
    }
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _NOT_FORWARDED | named)


@contextmanager
def running_proxy(upstream: str) -> Iterator[Proxy]:
    """Run a proxy in front of ``upstream``, in its own thread and event loop, for the block."""
    proxy = Proxy(upstream)
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(proxy.serve(started, stop))
        except BaseException as exc:
            failure.append(exc)
        finally:
            started.set()  # never leave the caller waiting on a proxy that failed to start
            loop.close()

    thread = threading.Thread(target=run, name=f"test-proxy->{upstream}", daemon=True)
    thread.start()
    started.wait(30)
    if failure or not proxy.endpoint_url:
        thread.join(5)
        raise RuntimeError(f"test proxy did not start: {failure!r}")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        if failure:
            raise RuntimeError("test proxy failed") from failure[0]
