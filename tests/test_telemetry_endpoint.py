"""``qfan run --metrics-port`` as a real subprocess, scraped over HTTP while its worker runs, and
``qfan top --once --json`` against the emulator."""

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .helpers import AppFactory
from .support.workers import handled, start_recording_worker
from .test_cli import qfan as qfan_cli

pytestmark = [pytest.mark.one_transport, pytest.mark.one_emulator]  # processes around the library


class Item(msgspec.Struct):
    id: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def test_metrics_endpoint_counts_what_the_worker_processed(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    name, out, port = unique_name("metered"), tmp_path / "handled.txt", free_port()
    app = make_app()
    queue = app.queue(name, Item, visibility_timeout=2)  # declared as the worker's app declares it
    worker = start_recording_worker(
        endpoint_url,
        name,
        out,
        sleep=0.01,
        options=["--metrics-port", str(port), "--backlog-interval", "0.5"],
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with app, aiohttp.ClientSession() as session:
            with anyio.fail_after(60):
                while True:  # the process answers /healthz first; /readyz once its first receive came back
                    try:
                        health, _ = await get(session, f"{base}/healthz")
                        ready, _ = await get(session, f"{base}/readyz")
                    except aiohttp.ClientConnectionError:
                        await anyio.sleep(0.1)
                        continue
                    assert health == 200
                    if ready == 200:
                        break
                    assert ready == 503
                    await anyio.sleep(0.1)
            await queue.send_many(Item(i) for i in range(25))
            with anyio.fail_after(60):
                while sum(handled(out).values()) < 25:  # noqa: ASYNC110 - polling the worker's output file
                    await anyio.sleep(0.1)
            acked: list[tuple[dict[str, str], float]] = []
            with anyio.fail_after(30):
                while sum(value for _, value in acked) < 25:  # acks are counted as they are decided
                    status, text = await get(session, f"{base}/metrics")
                    assert status == 200
                    acked = [
                        (labels, value)
                        for labels, value in samples(text, "qfan_messages_settled_total")
                        if labels.get("qfan_outcome") == "acked"
                    ]
                    await anyio.sleep(0.2)
            assert sum(handled(out).values()) == 25
            assert {labels["qfan_worker"] for labels, _ in acked} == {"record"}
            assert sum(value for _, value in acked) == 25
            received = samples(text, "qfan_messages_received_total")
            assert sum(value for _, value in received) == 25
            backlog = {
                labels["state"]: value
                for labels, value in samples(text, "qfan_queue_messages")
                if labels.get("messaging_destination_name") == name
            }
            assert set(backlog) == {"visible", "not_visible", "delayed"}
            assert (await get(session, f"{base}/nowhere"))[0] == 404
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, out.with_suffix(".log").read_text()


async def test_top_once_json(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("top-dlq"), str)
    queue = app.queue(unique_name("top"), str, dead_letter=dead, max_receives=3)
    other = app.queue(unique_name("top-other"), str)
    async with app:
        await queue.send_many(["a", "b", "c"])
        await queue.send("later", delay=60)
        await dead.send_many(["x", "y"])
        [held] = await queue.receive(max_messages=1, wait=5, visibility=60)
    assert held.body in {"a", "b", "c"}
    where = ["--endpoint-url", endpoint_url, "--region", "us-east-1"]
    result = await anyio.to_thread.run_sync(
        lambda: qfan_cli("top", "--queue", queue.name, "--queue", other.name, "--once", "--json", *where)
    )
    assert result.returncode == 0, result.stderr
    rows: dict[str, Any] = {row["queue"]: row for row in json.loads(result.stdout)["queues"]}
    assert rows[queue.name]["visible"] == 2
    assert rows[queue.name]["in_flight"] == 1
    assert rows[queue.name]["delayed"] == 1
    assert rows[queue.name]["dlq"] == dead.name
    assert rows[queue.name]["dlq_depth"] == 2
    assert rows[other.name] == {
        "queue": other.name,
        "visible": 0,
        "in_flight": 0,
        "delayed": 0,
        "dlq": None,
        "dlq_depth": None,
        "oldest_age": None,
        "rate": None,
    }
    missing = await anyio.to_thread.run_sync(
        lambda: qfan_cli("top", "--queue", unique_name("absent"), "--once", "--json", *where)
    )
    assert missing.returncode == 1
    assert "QueueNotFound" in json.loads(missing.stdout)["queues"][0]["error"]


def test_top_without_queues_says_so() -> None:
    result = qfan_cli("top", "--once")
    assert result.returncode == 2
    assert "no queues" in result.stderr


def test_tracing_example_prints_one_trace_through_the_fanout() -> None:
    """The example installs a global SDK provider (its own process) and calls nothing of qfan's to trace."""
    example = Path(__file__).parent.parent / "examples" / "tracing.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    tree = result.stdout[result.stdout.index("trace ") :].splitlines()
    assert len([line for line in tree if line.startswith("trace ")]) == 1  # one trace, nothing else
    depth = {line.strip().split("  [")[0]: len(line) - len(line.lstrip()) for line in tree[1:]}
    assert depth["checkout"] < depth["create orders"] < depth["process billing"] < depth["charge card"]
    assert depth["process billing"] == depth["process shipping"] == depth["receive shipping"]
    assert "exported: process shipping (consumer)" in result.stdout  # the SDK's console exporter


async def test_top_live_refreshes_until_interrupted(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    app = make_app()
    queue = app.queue(unique_name("live"), str)
    async with app:
        await queue.send_many(["a", "b", "c"])
    where = ["--endpoint-url", endpoint_url, "--region", "us-east-1"]
    out = tmp_path / "top.txt"
    with out.open("wb") as sink:
        top = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for in a thread
            [sys.executable, "-m", "qfan", "top", "--queue", queue.name, "--interval", "0.2", *where],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            with anyio.fail_after(60):
                while out.read_text(errors="replace").count("qfan top ·") < 3:  # noqa: ASYNC110 - its output
                    await anyio.sleep(0.1)
        finally:
            top.send_signal(signal.SIGINT)
            code = await anyio.to_thread.run_sync(lambda: top.wait(timeout=30))
    text = out.read_text()
    assert code == 0, text
    assert queue.name[:6] in text
