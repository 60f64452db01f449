"""Runs the matrix: for each scenario and client, prepare fresh resources, run the client in its own
process, measure it, verify delivery by id, and clean up."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .clients import CLIENTS, scenario_function
from .common import LATENCY, Job, NotAvailable, Outcome, percentile
from .latency import latency_proxy
from .resources import FANOUT_QUEUES, Admin, Resources
from .servers import Server

SCENARIOS: dict[str, str] = {
    "publish": "send N ~200 B JSON messages",
    "consume": "receive + ack N from a backlog",
    "e2e": "publish -> handler -> ack, concurrently",
    "fanout": f"publish N to an SNS topic with {FANOUT_QUEUES} subscribed queues",
    "rpc": "request/response round trips at several concurrencies",
    "offload": "300 KiB payloads (S3 offload where the client has it)",
    "e2e-20ms": "e2e through a proxy adding 20 ms each way (about as far as real SQS)",
}
BASE_SCENARIO = {"e2e-20ms": "e2e"}
"""Scenarios that run another scenario's client code under different conditions."""
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    messages: int = 10_000
    fanout_messages: int = 3000
    rpc_messages: int = 900
    offload_messages: int = 200
    latency_messages: int = 1000
    body_bytes: int = 200
    offload_bytes: int = 300 * 1024
    concurrency: int = 16
    rpc_concurrencies: list[int] = field(default_factory=lambda: [1, 8, 32])
    timeout: float = 180.0
    region: str = "us-east-1"

    def size_of(self, scenario: str) -> tuple[int, int]:
        """(messages, body bytes) for a scenario."""
        if scenario == "fanout":
            return self.fanout_messages, self.body_bytes
        if scenario == "rpc":
            return self.rpc_messages, self.body_bytes
        if scenario == "offload":
            return self.offload_messages, self.offload_bytes
        if scenario in LATENCY:  # at most the e2e count: a naive client makes 3 round trips per message
            return min(self.latency_messages, self.messages), self.body_bytes
        return self.messages, self.body_bytes


@dataclass
class Cell:
    """One measured (or skipped) client x scenario."""

    client: str
    scenario: str
    status: str
    reason: str = ""
    messages: int = 0
    seconds: float | None = None
    msgs_per_s: float | None = None
    cpu_us_per_msg: float | None = None
    process_cpu_s: float | None = None
    peak_rss_mb: float | None = None
    server_cpu_us_per_msg: float | None = None
    lost: int | None = None
    duplicates: int | None = None
    left_in_queue: int | None = None
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: str = ""


class Progress:
    """One line per cell; on a terminal, a live elapsed-time line while a cell runs."""

    def __init__(self, total: int, stream: Any = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.live = stream.isatty()
        self.started = time.monotonic()

    def tick(self, label: str, since: float) -> None:
        if self.live:
            self.stream.write(f"\r  {label} ... {time.monotonic() - since:5.1f}s")
            self.stream.flush()

    def finished(self, label: str, cell: Cell) -> None:
        self.done += 1
        if cell.status == "ok":
            result = (
                f"{cell.msgs_per_s:>9,.0f} msg/s  {cell.cpu_us_per_msg:>7,.0f} µs CPU/msg  "
                f"lost {cell.lost} dup {cell.duplicates}"
            )
        else:
            result = f"{cell.status}: {cell.reason}"
        elapsed = time.monotonic() - self.started
        prefix = "\r\033[K" if self.live else ""
        self.stream.write(f"{prefix}[{self.done:>2}/{self.total}] {elapsed:5.0f}s  {label:<28} {result}\n")
        self.stream.flush()


def child_environment(server: Server) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if server.pid is not None:  # an emulator the harness started: dummy credentials, no AWS settings
        for name in [n for n in env if n.startswith("AWS_")]:
            del env[name]
        env.update(
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
        )
    return env


def run_child(
    job: Job, env: dict[str, str], timeout: float, progress: Progress, label: str
) -> tuple[Outcome, Any]:
    """Run one client process; returns its outcome and its resource usage (from wait4)."""
    import subprocess

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.child", job.to_json()],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        started = time.monotonic()
        usage = None
        while usage is None:
            pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                usage = rusage
                break
            if time.monotonic() - started > timeout:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                return Outcome(status="error", reason=f"timed out after {timeout:.0f}s"), usage
            progress.tick(label, started)
            time.sleep(0.1)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        err.seek(0)
        errors = err.read().decode(errors="replace")
    try:
        outcome = Outcome.from_json(lines[-1])
    except (IndexError, ValueError, TypeError):
        tail = errors.strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
        outcome = Outcome(status="error", reason=f"client process failed: {tail[0][:300]}")
    if outcome.status == "error" and errors:
        sys.stderr.write(f"\n--- {label} stderr (tail) ---\n{errors[-3000:]}\n")
    return outcome, usage


def verify(cell: Cell, expected: int, ids: list[int], copies: int = 1) -> None:
    """Lost: expected ids never seen (per copy); duplicates: ids seen more than ``copies`` times."""
    counts = Counter(ids)
    cell.lost = sum(max(0, copies - counts.get(i, 0)) for i in range(expected))
    cell.duplicates = sum(max(0, n - copies) for n in counts.values())


async def run_cell(
    admin: Admin, server: Server, settings: Settings, client: str, scenario: str, progress: Progress
) -> Cell:
    label = f"{scenario} · {client}"
    base = BASE_SCENARIO.get(scenario, scenario)
    try:
        scenario_function(client, base)
        if scenario in LATENCY and server.endpoint_url is None:
            raise NotAvailable("AWS itself is already that far away")
    except NotAvailable as exc:
        cell = Cell(client, scenario, "n/a", str(exc))
        progress.finished(label, cell)
        return cell
    messages, body_bytes = settings.size_of(scenario)
    made = await admin.create(base, client.replace("-", "")[:12])
    try:
        job = _job(settings, server, client, base, messages, body_bytes, made)
        server_cpu = server.cpu_seconds()
        with ExitStack() as stack:
            if scenario in LATENCY and job.endpoint_url is not None:
                job.latency = LATENCY[scenario]
                job.endpoint_url = stack.enter_context(latency_proxy(job.endpoint_url, job.latency))
            outcome, usage = await asyncio.to_thread(
                run_child, job, child_environment(server), settings.timeout, progress, label
            )
        server_cpu_after = server.cpu_seconds()
        cell = _cell(client, scenario, outcome, usage)
        if outcome.status == "ok":
            if server_cpu is not None and server_cpu_after is not None and outcome.messages:
                cell.server_cpu_us_per_msg = round(
                    (server_cpu_after - server_cpu) / outcome.messages * 1e6, 1
                )
            await _verify(admin, cell, base, messages, outcome, made)
    finally:
        await admin.delete(made)
    progress.finished(label, cell)
    return cell


def _job(
    settings: Settings,
    server: Server,
    client: str,
    scenario: str,
    messages: int,
    body_bytes: int,
    made: Resources,
) -> Job:
    return Job(
        client=client,
        scenario=scenario,
        endpoint_url=server.endpoint_url,
        region=settings.region,
        messages=messages,
        body_bytes=body_bytes,
        concurrency=settings.concurrency,
        queue_url=made.queue_url,
        queue_name=made.queue_name,
        topic_arn=made.topic_arn,
        bucket=made.bucket,
        reply_queue_url=made.reply_queue_url,
        rpc_concurrencies=settings.rpc_concurrencies,
    )


def _cell(client: str, scenario: str, outcome: Outcome, usage: Any) -> Cell:
    cell = Cell(client, scenario, outcome.status, outcome.reason, outcome.messages, notes=outcome.notes)
    if usage is not None:
        cell.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)
        cell.process_cpu_s = round(usage.ru_utime + usage.ru_stime, 2)
    if outcome.status == "ok" and outcome.seconds > 0 and outcome.messages:
        cell.seconds = round(outcome.seconds, 3)
        cell.msgs_per_s = round(outcome.messages / outcome.seconds, 1)
        cell.cpu_us_per_msg = round(outcome.cpu_seconds / outcome.messages * 1e6, 1)
    for name, samples in outcome.latencies_ms.items():
        cell.latency_ms[name] = {
            "p50": _round(percentile(samples, 50)),
            "p99": _round(percentile(samples, 99)),
        }
    return cell


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _verify(
    admin: Admin, cell: Cell, scenario: str, messages: int, outcome: Outcome, made: Resources
) -> None:
    if scenario == "publish":
        # Sent means in the queue: one empty long poll per receiver is enough to know it is drained.
        verify(cell, messages, await admin.drain(made.queue_url, idle_polls=1))
    elif scenario == "fanout":
        drained = await asyncio.gather(*(admin.drain(url) for url in made.fanout_queue_urls))
        found = [bid for ids in drained for bid in ids]
        verify(cell, messages, found, copies=len(made.fanout_queue_urls))
    else:
        verify(cell, outcome.messages, outcome.ids or [])
        cell.left_in_queue = await admin.remaining(made.queue_url)


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": _library_versions(),
    }


def _library_versions() -> dict[str, str]:
    import importlib.metadata

    names = [
        "qfan",
        "aiobotocore",
        "botocore",
        "boto3",
        "sqs-workers",
        "taskiq",
        "taskiq-aio-sqs",
        "amazon-sqs-extended-client",
    ]
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


async def run_matrix(
    server: Server, settings: Settings, scenarios: list[str], clients: list[str], progress: Progress
) -> list[Cell]:
    cells = []
    if server.pid is not None:  # our own emulator: the harness's calls use the same dummy credentials
        environment = child_environment(server)
        os.environ.clear()
        os.environ.update(environment)
    async with Admin(server.endpoint_url, settings.region).open() as admin:
        for scenario in scenarios:
            for client in clients:
                cells.append(await run_cell(admin, server, settings, client, scenario, progress))
    return cells


def results_document(
    server: Server, settings: Settings, cells: list[Cell], command: str, started: float
) -> dict[str, Any]:
    return {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started),
        "machine": machine(),
        "server": {"name": server.name, "version": server.version, "endpoint_url": server.endpoint_url},
        "settings": asdict(settings),
        "scenarios": SCENARIOS,
        "clients": CLIENTS,
        "results": [asdict(cell) for cell in cells],
    }
