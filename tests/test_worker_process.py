"""``qfan run`` as a real subprocess: graceful SIGTERM, SIGKILL mid-batch, and ``qfan dlq redrive``."""

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio

import qfan

from .helpers import AppFactory
from .support.workers import handled, start_recording_worker
from .test_cli import qfan as qfan_cli


@contextmanager
def worker_process(
    endpoint_url: str, queue: str, out: Path, sleep: float
) -> Iterator[subprocess.Popen[bytes]]:
    process = start_recording_worker(endpoint_url, queue, out, sleep=sleep)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def wait_for(predicate: Callable[[], bool], limit: float = 60) -> None:
    with anyio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - polling a file another process writes
            await anyio.sleep(0.1)


async def send_items(make_app: AppFactory, name: str, count: int) -> None:
    app = make_app()
    queue = app.queue(name, visibility_timeout=2)
    async with app:
        await queue.send_many([{"id": i} for i in range(count)])


async def test_sigterm_drains_and_every_message_is_handled_exactly_once(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    name, out = unique_name(), tmp_path / "handled.txt"
    await send_items(make_app, name, 30)
    with worker_process(endpoint_url, name, out, sleep=0.3) as process:
        await wait_for(lambda: sum(handled(out).values()) >= 5)
        process.send_signal(signal.SIGTERM)  # mid-processing: handlers running, others prefetched
        returncode = await anyio.to_thread.run_sync(process.wait, 60)
    stderr = out.with_suffix(".log").read_text()
    assert returncode == 0, stderr
    assert "stopping gracefully" in stderr
    with worker_process(endpoint_url, name, out, sleep=0.0) as process:  # a second run finishes the rest
        await wait_for(lambda: len(handled(out)) >= 30)
        process.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(process.wait, 60) == 0
    counts = handled(out)
    assert set(counts) == set(range(30))
    assert max(counts.values()) == 1, {i: n for i, n in counts.items() if n > 1}


async def test_sigkill_loses_nothing(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    name, out = unique_name(), tmp_path / "handled.txt"
    await send_items(make_app, name, 20)
    with worker_process(endpoint_url, name, out, sleep=0.3) as process:
        await wait_for(lambda: sum(handled(out).values()) >= 3)
        process.kill()  # no chance to release or ack anything
        process.wait(10)
    killed_after = set(handled(out))
    with worker_process(endpoint_url, name, out, sleep=0.0) as process:  # held ones return after 2 s
        await wait_for(lambda: len(handled(out)) >= 20)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert set(handled(out)) == set(range(20))
    assert killed_after < set(range(20))


async def test_dlq_redrive_moves_messages_back_without_the_reasons(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    source = app.queue(unique_name(), dead_letter=dead)
    async with app:
        await dead.send_many(["a", "b", "c"], attributes={"dead-letter-reason": "test", "keep": "me"})
    result = qfan_cli(
        "dlq",
        "redrive",
        dead.name,
        "--to",
        source.name,
        "--endpoint-url",
        endpoint_url,
        "--region",
        "us-east-1",
    )
    assert result.returncode == 0, result.stderr
    assert f"moved 3 messages from {dead.name} to {source.name}" in result.stdout
    async with make_app() as again:
        back = again.queue(source.name, create=False)
        await back.declare()
        moved: list[qfan.Message[str]] = []
        while len(moved) < 3:
            batch = await back.receive(wait=2)
            assert batch
            moved.extend(batch)
        assert await again.queue(dead.name, create=False).receive(wait=0) == []
    assert sorted(m.body for m in moved) == ["a", "b", "c"]
    assert all(m.attributes == {"keep": "me"} for m in moved)
