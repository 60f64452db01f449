"""Secrets stay out of logs, error texts and reprs (issue #19).

The log tests run the real ``qfan run`` CLI as a subprocess against the emulator with distinctive
credentials; the error tests talk to a loopback SQS of their own that answers ``SignatureDoesNotMatch``
the way AWS does, quoting the canonical request (session token included).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import anyio
import pytest
from aiohttp import web

import qfan
from qfan._transport import ConnectionSettings

from .helpers import AppFactory
from .support.workers import ROOT, handled

ACCESS_KEY = "AKIAQFANTESTLEAKCHECK"


def distinctive_secret() -> str:
    return f"qfanSecretKey{uuid.uuid4().hex}"


def distinctive_token() -> str:
    # Shaped like an STS token: long base64 with '+', '/' and '=' (which also get percent-encoded).
    return f"IQoJb3JpZ2luX2VjEqfan+Token/{uuid.uuid4().hex}" + "x" * 300 + "QfanTokenEnd=="


def leaks(output: str, secret: str, token: str) -> list[str]:
    """Which forbidden things ``output`` contains (empty when it is clean)."""
    found = [
        name
        for name, needle in (
            ("secret key", secret),
            ("session token", token),
            ("percent-encoded session token", quote(token, safe="")),
            ("token fragment", token[10:60]),
            ("Signature=", "Signature="),
            ("Authorization header value", "AWS4-HMAC-SHA256 Credential="),
        )
        if needle in output
    ]
    if re.search(r"authorization['\"]?\s*[:=]\s*b?['\"]?AWS4", output, re.IGNORECASE):
        found.append("Authorization header")
    return found


# -- A: qfan run --log-level DEBUG ----------------------------------------------------------------------


def start_worker(
    endpoint_url: str, queue: str, out: Path, log: Path, credentials: dict[str, str], extra: list[str]
) -> subprocess.Popen[bytes]:
    """``qfan run tests.apps.leaky_worker:app`` with these credentials, its output in ``log``."""
    env = {
        **os.environ,
        **credentials,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "AWS_ENDPOINT_URL": endpoint_url,
        "QFAN_TEST_QUEUE": queue,
        "QFAN_TEST_OUT": str(out),
    }
    command = [sys.executable, "-m", "qfan", "run", "tests.apps.leaky_worker:app", *extra]
    with log.open("ab") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)


async def wait_for(
    predicate: Callable[[], bool], process: subprocess.Popen[bytes], limit: float = 60
) -> None:
    with anyio.fail_after(limit):
        while not predicate():
            if process.poll() is not None:
                return  # exited early (e.g. a bad flag): the caller's assertions report its output
            await anyio.sleep(0.1)


@pytest.mark.one_emulator  # a `qfan run` process: what it logs does not depend on the server
@pytest.mark.parametrize("wire", [False, True], ids=["debug", "debug-wire"])
async def test_qfan_run_at_debug_level_logs_no_credentials(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path, wire: bool
) -> None:
    secret, token = distinctive_secret(), distinctive_token()
    credentials = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": token,
    }
    name, out, log = unique_name(), tmp_path / "handled.txt", tmp_path / "worker.log"
    app = make_app(access_key_id=ACCESS_KEY, secret_access_key=secret, session_token=token)
    queue = app.queue(name, visibility_timeout=2)  # as the leaky worker declares it
    async with app:
        await queue.send({"id": 7})

    extra = ["--log-level", "DEBUG", *(["--log-wire"] if wire else [])]
    process = start_worker(endpoint_url, name, out, log, credentials, extra)
    try:
        await wait_for(lambda: 7 in handled(out), process)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        returncode = await anyio.to_thread.run_sync(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log.read_text(errors="replace")

    # Not vacuous: the worker ran, handled the message and stopped, all through the logging under test.
    assert returncode == 0, output
    assert handled(out) == {7: 1}, output
    assert "stopping gracefully" in output
    assert "worker record stopped" in output
    assert leaks(output, secret, token) == [], output
    # What the worker logged about its own secrets is there, scrubbed.
    assert "DEBUG tests.leaky: handling 7 with secret key ***" in output
    assert "ERROR tests.leaky: handled 7 after an upstream failure" in output
    assert "RuntimeError: upstream rejected session token ***" in output  # the traceback is printed
    if wire:  # botocore's wire logging is on, and its canonical requests were logged, redacted
        assert " DEBUG botocore" in output
        assert "CanonicalRequest" in output
        assert "x-amz-security-token:***" in output
    else:  # the wire loggers stay at INFO unless asked for
        assert " DEBUG botocore" not in output
        assert " DEBUG aiobotocore" not in output


def test_run_help_documents_the_wire_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qfan", "run", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--log-wire" in result.stdout


# -- B: reprs and error texts ---------------------------------------------------------------------------


def test_connection_settings_repr_hides_the_secret_key_and_the_token() -> None:
    secret, token = distinctive_secret(), distinctive_token()
    app = qfan.App(
        "repr", region="us-east-1", access_key_id=ACCESS_KEY, secret_access_key=secret, session_token=token
    )
    for shown in (repr(app.settings), str(app.settings)):
        assert secret not in shown
        assert token not in shown
        assert "secret_access_key='***'" in shown
        assert "session_token='***'" in shown
        assert ACCESS_KEY in shown  # the key id is not a secret, and it helps to see which one is used
    assert "session_token=None" in repr(ConnectionSettings(region="us-east-1"))
    assert app.settings.secret_access_key == secret  # hidden from repr only


@dataclass
class FakeSqs:
    """A loopback SQS (JSON protocol) that answers ``failing`` with AWS's ``SignatureDoesNotMatch``."""

    failing: str
    url: str = ""
    calls: list[str] = field(default_factory=list)
    tokens_seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        self.calls.append(operation)
        body = json.loads(await request.read() or b"{}")
        if operation == self.failing:
            token = request.headers.get("X-Amz-Security-Token", "")
            self.tokens_seen.append(token)
            return self.signature_does_not_match(request, token)
        if operation == "GetQueueUrl":
            return self.answer({"QueueUrl": f"{self.url}/123456789012/{body['QueueName']}"})
        if operation == "GetQueueAttributes":
            name = body["QueueUrl"].rpartition("/")[2]
            return self.answer({"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}"}})
        if operation == "ListQueueTags":
            return self.answer({})
        return self.answer({"__type": "com.amazonaws.sqs#UnsupportedOperation", "message": operation}, 400)

    def signature_does_not_match(self, request: web.Request, token: str) -> web.Response:
        canonical = (
            f"POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{request.host}\n"
            f"x-amz-date:{request.headers.get('X-Amz-Date', '')}\nx-amz-security-token:{token}\n"
            f"x-amz-target:{request.headers.get('X-Amz-Target', '')}\n\n"
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        message = (
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'\n\n"
            "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20250101T000000Z\n"
            "20250101/us-east-1/sqs/aws4_request\n"
            "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0'\n"
        )
        answer = {"__type": "com.amazon.coral.service#SignatureDoesNotMatch", "message": message}
        return self.answer(answer, 403, {"x-amzn-query-error": "SignatureDoesNotMatch;Sender"})

    @staticmethod
    def answer(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-RequestId": "req-1",
                **(headers or {}),
            },
        )


@pytest.fixture
async def fake_sqs(request: pytest.FixtureRequest) -> AsyncIterator[FakeSqs]:
    fake = FakeSqs(failing=request.param)
    server = web.Application()
    server.router.add_post("/", fake.handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "fake_sqs",
    ["SendMessageBatch", "GetQueueUrl"],  # the data plane (per transport) and the control plane
    indirect=True,
)
async def test_signature_errors_do_not_carry_the_session_token(fake_sqs: FakeSqs, transport: str) -> None:
    secret, token = distinctive_secret(), distinctive_token()
    app = qfan.App(
        "sig",
        endpoint_url=fake_sqs.url,
        region="us-east-1",
        transport=transport,  # type: ignore[arg-type]
        access_key_id=ACCESS_KEY,
        secret_access_key=secret,
        session_token=token,
        declare_on_start=False,
    )
    queue = app.queue("signed")
    async with app:
        with pytest.raises(qfan.AccessDenied) as caught:
            await queue.send("hello")
    error = caught.value

    assert fake_sqs.tokens_seen == [token]  # the answer did quote the token the request carried
    assert error.code == "SignatureDoesNotMatch"
    assert "SignatureDoesNotMatch" in str(error)
    assert "The Canonical String for this request should have been" in str(error)  # the rest is kept
    everything = "".join(traceback.format_exception(error))  # the chained botocore error included
    for shown in (str(error), repr(error), repr(error.args), everything):
        assert leaks(shown, secret, token) == [], shown
