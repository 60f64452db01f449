"""A worker's life against a real emulator: readiness, level changes in strict mode, a clean stop, idle exit.

The time bounds here are behaviour bounds, not speed benchmarks: each one is far below the 20 s long poll
whose wait it proves the worker no longer pays.
"""

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import qfan

from .helpers import AppFactory
from .support.aws import raw_client
from .support.workers import handled, start_recording_worker
from .test_workers import run_until

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)

LONG_POLL = 20  # the receive wait every worker here uses: what a missed wake-up would cost


async def test_strict_mode_starts_the_next_level_without_waiting_out_a_long_poll(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    levels = {"high": 3, "normal": 2, "low": 1}
    jobs = app.priority_queue(unique_name("jobs"), int, levels=levels, mode="strict")
    starts: list[tuple[float, str]] = []

    @app.worker(jobs, name="strict-levels", concurrency=2, prefetch=2, receive_wait=LONG_POLL)
    async def handle(n: int, message: qfan.Message[int]) -> None:
        starts.append((time.monotonic(), jobs.level_of(message)))
        await anyio.sleep(0.01)

    async with app:
        for level in levels:
            await jobs.send_many(range(12), priority=level)  # 12: a multiple of the worker's asks
        await run_until(app, lambda: len(starts) >= 36, limit=120)
    order = [level for _, level in starts]
    assert order == sorted(order, key=list(levels).index)  # still strictly in order
    for upper, lower in (("high", "normal"), ("normal", "low")):
        last_upper = max(t for t, level in starts if level == upper)
        first_lower = min(t for t, level in starts if level == lower)
        assert first_lower - last_upper < 5, (upper, lower, first_lower - last_upper)


async def test_stop_during_an_idle_long_poll_hides_nothing_sent_right_after(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), int, visibility_timeout=300)  # a hidden message would stay hidden
    handled: list[int] = []

    @app.worker(queue, name="idle", receive_wait=LONG_POLL)
    async def handle(n: int) -> None:
        handled.append(n)

    async with app:
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            with anyio.fail_after(30):
                while not app.ready:  # noqa: ASYNC110 - polling a plain property
                    await anyio.sleep(0.05)
            await anyio.sleep(0.5)  # its long poll is out now, idle
            app.stop()
            with anyio.fail_after(LONG_POLL / 2):  # run() returns without waiting out the long poll
                while app.ready or app.stopping:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
        await queue.send_many(range(10))
        got: set[int] = set()
        with anyio.fail_after(LONG_POLL / 2):  # all visible at once, not after the visibility timeout
            while len(got) < 10:
                for message in await queue.receive(10, wait=1):
                    got.add(message.body)
                    await message.ack()
    assert got == set(range(10))
    assert handled == []
    assert app.stats()["idle"].received == 0


async def test_ready_once_every_level_answered_and_not_while_stopping(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    jobs = app.priority_queue(unique_name("jobs"), int, levels={"high": 2, "low": 1})
    seen_ready: list[bool] = []

    @app.worker(jobs, name="ready", receive_wait=LONG_POLL)
    async def handle(n: int) -> None:
        seen_ready.append(app.ready)

    assert not app.ready
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        with anyio.fail_after(LONG_POLL / 2):  # the first receives do not wait out a long poll
            while not app.ready:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        await jobs.send(1, priority="low")
        with anyio.fail_after(30):
            while not seen_ready:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        app.stop()
        assert not app.ready
    assert not app.ready
    assert seen_ready == [True]


async def test_not_ready_while_a_queue_cannot_be_received(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), int)

    @app.worker(queue, name="gone")
    async def handle(n: int) -> None: ...

    async with app:
        async with raw_client("sqs", endpoint_url) as sqs:  # declared, then gone: every receive fails
            await sqs.delete_queue(QueueUrl=(await queue.declare()).url)
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            await anyio.sleep(3)
            assert not app.ready
            app.stop()


async def test_exit_when_idle_drains_the_queue_then_returns(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), int)
    handled: list[int] = []

    @app.worker(queue, name="batch-job", concurrency=4, receive_wait=LONG_POLL)
    async def handle(n: int) -> None:
        await anyio.sleep(0.05)
        handled.append(n)

    async with app:
        await queue.send_many(range(25))
        with anyio.fail_after(60):
            await app.run(exit_when_idle=1.5)
        assert sorted(handled) == list(range(25))
        assert await queue.receive(10, wait=0) == []
    with pytest.raises(qfan.ConfigError, match="exit_when_idle"):
        await app.run(exit_when_idle=0)


async def test_qfan_run_marks_readiness_then_exits_when_idle(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), visibility_timeout=2)  # as the recording worker declares it
    async with app:
        await queue.send_many([{"id": i} for i in range(20)])
    out, ready = tmp_path / "handled.txt", tmp_path / "ready"
    process = start_recording_worker(
        endpoint_url,
        queue.name,
        out,
        sleep=0.05,
        options=["--exit-when-idle", "2", "--ready-file", str(ready)],
    )
    try:
        with anyio.fail_after(30):
            while not ready.exists():
                assert process.poll() is None, (out.with_suffix(".log")).read_text()
                await anyio.sleep(0.05)
        with anyio.fail_after(60):  # no signal: it drains the queue, then exits by itself
            while process.poll() is None:  # noqa: ASYNC110 - polling a subprocess
                await anyio.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out.with_suffix(".log").read_text()
    assert handled(out) == Counter(range(20))
    assert not ready.exists()
