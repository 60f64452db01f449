"""Start a real AWS emulator as a separate process on a free loopback port, and stop it by its pid."""

from __future__ import annotations

import os
import shutil
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


@dataclass(frozen=True)
class Emulator:
    name: str
    endpoint_url: str
    pid: int
    account_id: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(name: EmulatorName, port: int, state: Path) -> tuple[list[str], dict[str, str], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if name == "moto":
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        return command, env, "/moto-api/", "123456789012"
    script = Path(sys.executable).with_name("ministack")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ministack"]
    env.update(
        BIND_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        SERVICES="sqs,sns,s3",
        LOG_LEVEL="WARNING",
        S3_DATA_DIR=str(state / "s3"),
        STATE_DIR=str(state / "state"),
    )
    return command, env, "/_ministack/health", "000000000000"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@contextmanager
def running_emulator(name: EmulatorName, *, timeout: float = 60.0) -> Iterator[Emulator]:
    """Run ``name`` for the duration of the block; fail with the server's log if it does not come up."""
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix=f"qfan-{name}-"))
    command, env, health, account = _command(name, port, state)
    log_path = state / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=state, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(endpoint + health):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} did not start on port {port}:\n{tail}")
            time.sleep(0.1)
        yield Emulator(name, endpoint, process.pid, account)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(state, ignore_errors=True)
