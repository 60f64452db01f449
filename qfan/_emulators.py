"""The one emulator launcher: for ``qfan.local()`` and the CLI, for the test suite and for the benchmarks.

An emulator runs in one of two ways:

* **in this process** (:func:`running_in_process`): moto's ``ThreadedMotoServer`` in a background thread.
  Nothing to install beyond ``qfan[local]``; what ``qfan.local()``, ``qfan local`` and ``qfan demo`` use.
* **as a separate process** (:func:`running_process`): moto, MiniStack, fauxqs, or any :class:`Recipe`.
  Clients talk to it over real HTTP exactly as to AWS, its CPU use does not share the caller's GIL, and
  its crash cannot take the caller down: what the tests and the benchmarks use.

A process gets a free loopback port, a private temp dir (its ``TMPDIR`` and any state) and a log file in
it (a pipe nobody reads would fill up and stall the server). It counts as up when its health URL answers
200 *and* the process itself owns the listening socket; when another program took the port between the
probe and the bind, it is started again on a new port. It is stopped by its own pid, never by name. A
missing package or a server that does not come up is :class:`~qfan.EmulatorUnavailable`, with the log's
tail. Nothing here imports moto or MiniStack until an emulator is started.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._exceptions import EmulatorUnavailable

#: The emulators :func:`running_process` knows by name; fauxqs needs :func:`fauxqs_recipe` (it is an npm
#: package, so its install location is the caller's to say).
ProcessName = Literal["moto", "ministack"]

LOOPBACK = "127.0.0.1"
#: The account id moto puts in every ARN and queue URL.
MOTO_ACCOUNT_ID = "123456789012"
_START_ATTEMPTS = 3
# What a server logs when it lost the race for its port: Python's OSError and Node's EADDRINUSE both say it.
_PORT_TAKEN = "already in use"
# This machine's settings that must not reach the server: real AWS settings, and the emulators' own
# configuration (persistence, data dirs, services) a developer may have exported for another run.
_FOREIGN_SETTINGS = ("AWS_", "MINISTACK_", "LOCALSTACK_", "FAUXQS_", "S3_", "PERSIST_")
# Health checks go straight to the loopback address: an HTTP(S)_PROXY in the environment would otherwise
# receive them (urllib honours it for 127.0.0.1 unless NO_PROXY says so).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """A running emulator (public as :class:`qfan.LocalEmulator`).

    Attributes:
        endpoint_url: where it listens, e.g. ``http://127.0.0.1:54321``.
        region: the region its environment points at.
        environment: the variables that point AWS clients (qfan's, boto3's, the AWS CLI's) at it.
        name: which emulator, e.g. ``"moto"`` or ``"ministack"``.
        account_id: the account id in the ARNs and queue URLs it reports.
        pid: the id of its process, or None when it runs inside this process.
        log_path: its output (deleted when it stops), or None when it runs inside this process.
    """

    endpoint_url: str
    region: str
    environment: Mapping[str, str] = field(default_factory=dict)
    name: str = "moto"
    account_id: str = MOTO_ACCOUNT_ID
    pid: int | None = None
    log_path: Path | None = None


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to run one emulator as a process.

    In ``command`` and the ``environment`` values, ``{port}``, ``{workdir}`` (the private temp dir) and
    ``{region}`` are replaced when it starts.

    Attributes:
        name: its name in records, logs and errors.
        command: its command line.
        health_path: the path that answers 200 once it serves requests.
        account_id: the account id in the ARNs and queue URLs it reports.
        environment: variables added to the (scrubbed) environment of this process.
        requires: the top-level Python module it needs (checked before it starts), or None.
        install_hint: how to install it, for the error when ``requires`` is missing.
    """

    name: str
    command: tuple[str, ...]
    health_path: str
    account_id: str
    environment: Mapping[str, str] = field(default_factory=dict)
    requires: str | None = None
    install_hint: str = ""


RECIPES: Mapping[ProcessName, Recipe] = {
    # This interpreter runs them, so they are the ones installed beside qfan.
    "moto": Recipe(
        "moto",
        (sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", "{port}"),
        "/moto-api/",
        MOTO_ACCOUNT_ID,
        requires="moto",
        install_hint="pip install 'qfan[local]'",
    ),
    "ministack": Recipe(
        "ministack",
        (sys.executable, "-m", "ministack"),
        "/_ministack/health",
        "000000000000",
        {
            "BIND_HOST": LOOPBACK,
            "GATEWAY_PORT": "{port}",
            "SERVICES": "sqs,sns,s3,dynamodb",
            "LOG_LEVEL": "WARNING",
            # Otherwise MiniStack also listens on 0.0.0.0:8883 (IoT mTLS) and may start an SFTP listener.
            "IOT_MTLS_ENABLED": "0",
            "SFTP_ENABLED": "0",
            # Persistence is off by default; pin it off and point every path it could use at the temp dir.
            "PERSIST_STATE": "0",
            "S3_PERSIST": "0",
            "STATE_DIR": "{workdir}/state",
            "S3_DATA_DIR": "{workdir}/s3",
        },
        requires="ministack",
        install_hint="pip install ministack (part of qfan's test extra)",
    ),
}


def fauxqs_recipe(package_dir: Path, node: Path | str | None = None) -> Recipe:
    """fauxqs (an npm package) from ``package_dir`` (``.../node_modules/fauxqs``), run by Node.

    Args:
        package_dir: the installed package.
        node: the ``node`` executable (default: the one on ``PATH``).

    Raises:
        EmulatorUnavailable: the package or Node is not there.
    """
    entry = package_dir.resolve() / "dist" / "app.js"  # absolute: the script imports it by file URL
    if not entry.is_file():
        raise EmulatorUnavailable(f"fauxqs is not installed in {package_dir}: npm install fauxqs")
    node = node or shutil.which("node")
    if node is None or not Path(node).exists():
        raise EmulatorUnavailable("fauxqs needs Node.js (node) to run")
    # Its own CLI forces request logging on, which costs the server CPU a benchmark measures: start it here.
    script = f'import {{ startFauxqs }} from "{entry.as_uri()}";\nawait startFauxqs({{ logger: false }});\n'
    return Recipe(
        "fauxqs",
        (str(node), "--input-type=module", "-e", script),
        "/health",
        "000000000000",
        {"FAUXQS_PORT": "{port}", "FAUXQS_DEFAULT_REGION": "{region}"},
    )


def aws_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """The variables that point AWS clients at an emulator: its endpoint, dummy credentials, the region."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_in_process(
    *, port: int = 0, region: str = "us-east-1", timeout: float = 30.0
) -> Iterator[RunningEmulator]:
    """Run moto in a background thread of this process for the block.

    Args:
        port: TCP port on 127.0.0.1 (0 lets the OS pick a free one).
        region: the region its ``environment`` points at.
        timeout: seconds it may take to start.

    Raises:
        EmulatorUnavailable: moto is not installed, the port is taken, or the server did not start.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise EmulatorUnavailable("the embedded emulator needs moto: pip install 'qfan[local]'") from exc
    if port:
        _check_bindable(port)
    # werkzeug logs every request at INFO; an emulator for local runs should be quiet.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    # start() waits for the server's thread to bind, forever if the bind fails: bound the wait.
    starter = threading.Thread(target=server.start, name="qfan-moto-start", daemon=True)
    starter.start()
    starter.join(timeout)
    if starter.is_alive():
        raise EmulatorUnavailable(f"moto did not start on {LOOPBACK}:{port} within {timeout:g}s")
    try:
        host, bound = server.get_host_and_port()
        endpoint = f"http://{host}:{bound}"
        yield RunningEmulator(endpoint, region, aws_environment(endpoint, region))
    finally:
        server.stop()


@contextmanager
def running_process(
    emulator: ProcessName | Recipe, *, region: str = "us-east-1", timeout: float = 30.0
) -> Iterator[RunningEmulator]:
    """Run an emulator as a separate process on a free loopback port for the block, in a private temp dir.

    Args:
        emulator: ``"moto"``, ``"ministack"``, or a :class:`Recipe` (e.g. :func:`fauxqs_recipe`).
        region: the region its ``environment`` points at.
        timeout: seconds each start attempt may take to become healthy.

    Raises:
        EmulatorUnavailable: its package is missing, or it exited or stayed unhealthy (with its log's tail).
    """
    if isinstance(emulator, Recipe):
        recipe = emulator
    elif emulator in RECIPES:
        recipe = RECIPES[emulator]
    else:
        raise ValueError(f"unknown emulator {emulator!r}; expected one of {sorted(RECIPES)} or a Recipe")
    # find_spec on a top-level name only locates it: nothing is imported into this process.
    if recipe.requires and importlib.util.find_spec(recipe.requires) is None:
        raise EmulatorUnavailable(f"{recipe.name} is not installed: {recipe.install_hint}")
    workdir = Path(tempfile.mkdtemp(prefix=f"qfan-{recipe.name}-"))
    try:
        process, running = _start(recipe, workdir, region, timeout)
        try:
            yield running
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _start(
    recipe: Recipe, workdir: Path, region: str, timeout: float
) -> tuple[subprocess.Popen[bytes], RunningEmulator]:
    """Start ``recipe`` and wait until it is healthy, on a new port after a lost port race."""
    log_path = workdir / "server.log"
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = free_port()
        values = {"{port}": str(port), "{workdir}": str(workdir), "{region}": region}
        command = [_fill(part, values) for part in recipe.command]
        env = {key: value for key, value in os.environ.items() if not key.startswith(_FOREIGN_SETTINGS)}
        env.update(TMPDIR=str(workdir), PYTHONUNBUFFERED="1")
        env.update({key: _fill(value, values) for key, value in recipe.environment.items()})
        with log_path.open("ab") as log:
            log.write(f"--- attempt {attempt} on port {port}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        endpoint = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if _is_healthy(endpoint + recipe.health_path) and listens_on(process.pid, port):
                environment = aws_environment(endpoint, region)
                running = RunningEmulator(
                    endpoint, region, environment, recipe.name, recipe.account_id, process.pid, log_path
                )
                return process, running
            time.sleep(0.05)
        exit_code = process.poll()
        stop_process(process)
        if exit_code is None or _PORT_TAKEN not in log_tail(log_path, 1000):
            break
    reason = f"not healthy after {timeout:g}s" if exit_code is None else f"exited with status {exit_code}"
    raise EmulatorUnavailable(f"{recipe.name} on port {port} {reason}; log tail:\n{log_tail(log_path)}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process by its pid, SIGKILL it if it is still there after ``timeout`` seconds, reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def log_tail(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` characters of a server log (empty if there is none)."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` owns a socket listening on ``port`` (Linux /proc; True elsewhere).

    Without this check a health probe could be answered by some other server that took the port first. Any
    local address counts: fauxqs listens on 0.0.0.0, others on 127.0.0.1.
    """
    try:
        tables = [Path(f"/proc/net/{name}").read_text() for name in ("tcp", "tcp6")]
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True
    inodes = {
        fields[9]
        for table in tables
        for fields in (line.split() for line in table.splitlines()[1:])
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A"  # 0A: LISTEN
    }
    sockets = set()
    for fd in fds:
        try:
            sockets.add(os.readlink(fd))
        except OSError:
            continue
    return any(f"socket:[{inode}]" in sockets for inode in inodes)


def _fill(text: str, values: Mapping[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def _is_healthy(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _check_bindable(port: int) -> None:
    """Fail now when ``port`` is taken (moto's server thread would die on it, silently)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As werkzeug does: a port in TIME_WAIT from a previous run is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise EmulatorUnavailable(f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}") from exc
