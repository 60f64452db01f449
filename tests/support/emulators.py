"""Run a real AWS emulator as a separate process on a free loopback port, and stop it by its own pid.

A separate process (not moto's in-process ``ThreadedMotoServer``) so the tests talk to the emulator over real
HTTP exactly as qfan talks to AWS, the emulator's CPU use does not share the test's GIL, and a crash of the
emulator cannot take the test process down. The server's output goes to a log file in a private temp dir (a
pipe nobody reads would fill up and stall the server); when it does not come up, the error carries its tail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

EmulatorName = Literal["moto", "ministack"]
EMULATORS: tuple[EmulatorName, ...] = ("moto", "ministack")

_LOOPBACK = "127.0.0.1"
_HEALTH_PATH: dict[EmulatorName, str] = {"moto": "/moto-api/", "ministack": "/_ministack/health"}
_ACCOUNT_ID: dict[EmulatorName, str] = {"moto": "123456789012", "ministack": "000000000000"}
_START_ATTEMPTS = 3  # a free port can be taken by someone else between our probe and the server's bind


@dataclass(frozen=True)
class Emulator:
    """A running emulator: where to send requests, which process it is, and the account id it reports."""

    name: str
    endpoint_url: str
    pid: int
    account_id: str
    log_path: Path | None = None


class EmulatorStartError(RuntimeError):
    """The emulator exited or did not answer its health check in time; the message has its log's tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def command(name: EmulatorName, port: int) -> list[str]:
    """The server's command line, run by this interpreter so that it is the venv's moto / MiniStack."""
    if name == "moto":
        return [sys.executable, "-m", "moto.server", "-H", _LOOPBACK, "-p", str(port)]
    return [sys.executable, "-m", "ministack"]


def environment(name: EmulatorName, port: int, workdir: Path) -> dict[str, str]:
    """The server's environment: none of this machine's AWS settings; temp files and state in ``workdir``."""
    drop = ("AWS_", "MINISTACK_", "LOCALSTACK_", "S3_", "PERSIST_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop)}
    env.update(TMPDIR=str(workdir), PYTHONUNBUFFERED="1")
    if name == "ministack":
        env.update(
            BIND_HOST=_LOOPBACK,
            GATEWAY_PORT=str(port),
            SERVICES="sqs,sns,s3",
            LOG_LEVEL="WARNING",
            # Otherwise MiniStack also listens on 0.0.0.0:8883 (IoT mTLS) and may start an SFTP listener.
            IOT_MTLS_ENABLED="0",
            SFTP_ENABLED="0",
            # Persistence is off by default; pin it off and point every path it could use at the temp dir.
            PERSIST_STATE="0",
            S3_PERSIST="0",
            STATE_DIR=str(workdir / "state"),
            S3_DATA_DIR=str(workdir / "s3"),
        )
    return env


def log_tail(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` characters of a server log (empty if there is none)."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def is_healthy(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` owns the socket listening on 127.0.0.1:``port`` (Linux /proc; True elsewhere).

    Without this check a health probe could be answered by some other server that took the port first.
    """
    try:
        table = Path("/proc/net/tcp").read_text()
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True
    wanted = f"0100007F:{port:04X}"
    inodes = {
        fields[9]
        for fields in (line.split() for line in table.splitlines()[1:])
        if fields[1] == wanted and fields[3] == "0A"  # 0A: LISTEN
    }
    sockets = set()
    for fd in fds:
        try:
            sockets.add(os.readlink(fd))
        except OSError:
            continue
    return any(f"socket:[{inode}]" in sockets for inode in inodes)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process by its pid, SIGKILL it if it is still there after ``timeout`` seconds, reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def start_emulator(
    name: EmulatorName, workdir: Path, *, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], Emulator]:
    """Start ``name`` on a free port and wait until it is healthy; the caller must ``stop_process`` it."""
    if name not in EMULATORS:
        raise ValueError(f"unknown emulator {name!r}; expected one of {EMULATORS}")
    log_path = workdir / "server.log"
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = free_port()
        endpoint = f"http://{_LOOPBACK}:{port}"
        with log_path.open("ab") as log:
            log.write(f"--- attempt {attempt}: {command(name, port)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command(name, port),
                env=environment(name, port, workdir),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if is_healthy(endpoint + _HEALTH_PATH[name]) and listens_on(process.pid, port):
                return process, Emulator(name, endpoint, process.pid, _ACCOUNT_ID[name], log_path)
            time.sleep(0.05)
        exit_code = process.poll()
        stop_process(process)
        if exit_code is None or "already in use" not in log_tail(log_path, 1000):
            break
    reason = f"not healthy after {timeout}s" if exit_code is None else f"exited with status {exit_code}"
    raise EmulatorStartError(f"{name} on port {port} {reason}; log tail:\n{log_tail(log_path)}")


@contextmanager
def running_emulator(name: EmulatorName, *, timeout: float = 30.0) -> Iterator[Emulator]:
    """Run emulator ``name`` in its own process for the duration of the block, in a private temp dir."""
    workdir = Path(tempfile.mkdtemp(prefix=f"qfan-{name}-"))
    try:
        process, emulator = start_emulator(name, workdir, timeout=timeout)
        try:
            yield emulator
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
