"""Priority queues against a real emulator: weighted shares, strict order, reserved slots, cheap polling."""

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import qfan

from .helpers import AppFactory
from .support.proxy import Proxy
from .test_workers import run_until

LEVELS = {"high": 8, "normal": 3, "low": 1}


def _tolerance_ok(shares: Counter[str], weights: dict[str, int], tolerance: float = 0.15) -> bool:
    total, weight_sum = sum(shares.values()), sum(weights.values())
    return all(
        abs(shares[level] / total - weight / weight_sum) <= tolerance * weight / weight_sum
        for level, weight in weights.items()
    )


async def test_weighted_shares_follow_the_weights_while_every_level_has_backlog(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    jobs = app.priority_queue(unique_name("jobs"), int, levels=LEVELS)
    started: list[str] = []

    @app.worker(jobs, name="weighted", concurrency=4, prefetch=12, receive_wait=1)
    async def handle(n: int, message: qfan.Message[int]) -> None:
        started.append(jobs.level_of(message))
        await anyio.sleep(0.03)

    window = 240  # high, the fastest to drain, still has 300 - 160 messages queued after this many starts
    async with app:
        for level in LEVELS:
            await jobs.send_many(range(300), priority=level)
        await run_until(app, lambda: len(started) >= window, limit=120)
        await jobs.purge()
    shares = Counter(started[:window])
    assert _tolerance_ok(shares, LEVELS), shares
    assert app.stats()["weighted"].started_by_level["low"] >= shares["low"]


async def test_a_lone_low_level_gets_every_handler_and_empty_levels_are_polled_gently(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    jobs = app.priority_queue(unique_name("jobs"), int, levels=LEVELS)
    running, peak, done = 0, 0, set()

    @app.worker(jobs, name="lone", concurrency=4, receive_wait=1)
    async def handle(n: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.1)
        running -= 1
        done.add(n)

    async with app:
        await jobs.send_many(range(40), priority="low")
        url = {level: (await queue.declare()).url for level, queue in jobs.levels.items()}
        proxy.clear()
        began = time.monotonic()
        await run_until(app, lambda: len(done) == 40, limit=60)
        await anyio.sleep(3)  # then idle on all levels for a while
        app.stop()
        elapsed = time.monotonic() - began
    assert done == set(range(40))
    assert peak == 4  # no capacity idles while any level has work
    receives = Counter(json.loads(r.body)["QueueUrl"] for r in proxy.calls("ReceiveMessage"))
    for level in ("high", "normal"):
        # One long poll per receive_wait once the level is known to be empty (plus the first of each
        # receiver, which does not know yet).
        assert receives[url[level]] <= elapsed / 1 + 3, (level, receives[url[level]], elapsed)


async def test_strict_mode_never_starts_a_lower_level_while_a_higher_one_has_work(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    jobs = app.priority_queue(unique_name("jobs"), int, levels=LEVELS, mode="strict")
    started: list[str] = []

    @app.worker(jobs, name="strict", concurrency=3, receive_wait=1)
    async def handle(n: int, message: qfan.Message[int]) -> None:
        started.append(jobs.level_of(message))
        await anyio.sleep(0.01)

    async with app:
        for level in reversed(LEVELS):  # lowest first: the worker must still take the highest first
            await jobs.send_many(range(30), priority=level)
        await run_until(app, lambda: len(started) >= 90, limit=120)
    rank = list(LEVELS)
    assert started == sorted(started, key=rank.index)
    assert Counter(started) == {"high": 30, "normal": 30, "low": 30}


async def test_reserved_slots_keep_room_for_their_level(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    jobs = app.priority_queue(unique_name("jobs"), str, levels=LEVELS, reserved={"high": 1})
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    high_started_while_low_ran: list[bool] = []
    done: list[str] = []

    @app.worker(jobs, name="reserved", concurrency=3, receive_wait=1)
    async def handle(body: str, message: qfan.Message[str]) -> None:
        level = jobs.level_of(message)
        if level == "high":
            high_started_while_low_ran.append(running["low"] == 2)
        running[level] += 1
        peak[level] = max(peak[level], running[level])
        await anyio.sleep(0.3 if level == "low" else 0.01)
        running[level] -= 1
        done.append(body)

    async with app:
        await jobs.send_many([f"low-{i}" for i in range(12)], priority="low")
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            with anyio.fail_after(60):
                while running["low"] < 2:  # noqa: ASYNC110 - polling what the handlers update
                    await anyio.sleep(0.02)
                await jobs.send("urgent", priority="high")
                while len(done) < 13:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            app.stop()
    assert peak["low"] == 2  # the reserved slot is never lent to another level
    assert high_started_while_low_ran == [True]


async def test_fifo_levels_keep_group_order(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    jobs = app.priority_queue(
        unique_name("jobs", fifo=True), dict, levels={"high": 2, "low": 1}, content_based_dedup=True
    )
    seen: dict[tuple[str, str], list[int]] = {}

    @app.worker(jobs, name="fifo-levels", concurrency=4, receive_wait=1)
    async def handle(body: dict[str, Any], message: qfan.Message[dict[str, Any]]) -> None:
        seen.setdefault((jobs.level_of(message), body["g"]), []).append(body["i"])

    async with app:
        assert all(queue.fifo and queue.name.endswith(".fifo") for queue in jobs.levels.values())
        for level in ("low", "high"):
            for group in ("a", "b"):
                await jobs.send_many(
                    [{"g": group, "i": i, "level": level} for i in range(10)], priority=level, group_id=group
                )
        await run_until(app, lambda: sum(map(len, seen.values())) >= 40, limit=90)
    assert seen == {(level, g): list(range(10)) for level in ("high", "low") for g in ("a", "b")}


async def test_priority_queue_declares_level_queues_and_sends_by_name(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    name = unique_name("jobs")
    jobs = app.priority_queue(name, levels=LEVELS, default="normal")
    assert [q.name for q in jobs.levels.values()] == [f"{name}-high", f"{name}-normal", f"{name}-low"]
    assert set(app.queues) >= {f"{name}-{level}" for level in LEVELS}
    async with app:
        await jobs.send({"n": 1})
        await jobs.send({"n": 2}, priority="high")
        assert await jobs.backlog() == {"high": 1, "normal": 1, "low": 0}
        (message,) = await jobs.level("high").receive(wait=1)
        assert message.body == {"n": 2}
        assert jobs.level_of(message) == "high"
        await message.ack()
        with pytest.raises(qfan.ConfigError, match="no level 'urgent'"):
            await jobs.send({"n": 3}, priority="urgent")
        await jobs.delete()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": {}}, "at least one level"),
        ({"levels": {"hi gh": 1}}, "level names"),
        ({"levels": {"high": 0}}, "weight"),
        ({"levels": {"high": 1}, "mode": "fair"}, "mode"),
        ({"levels": {"high": 1}, "reserved": {"low": 1}}, "unknown level 'low'"),
        ({"levels": {"high": 1}, "default": "low"}, "default 'low'"),
    ],
)
def test_priority_queue_configuration_errors(kwargs: dict[str, Any], match: str) -> None:
    app = qfan.App("t", endpoint_url="http://127.0.0.1:1", region="us-east-1")
    with pytest.raises(qfan.ConfigError, match=match):
        app.priority_queue("jobs", **kwargs)


def test_send_without_priority_needs_a_default() -> None:
    app = qfan.App("t", endpoint_url="http://127.0.0.1:1", region="us-east-1")
    jobs = app.priority_queue("jobs", levels=LEVELS)
    with pytest.raises(qfan.ConfigError, match="say which priority"):
        jobs.level()
    with pytest.raises(qfan.ConfigError, match="already registered"):
        app.priority_queue("jobs", levels=LEVELS)


def test_reserved_slots_must_leave_room_for_the_other_levels() -> None:
    app = qfan.App("t", endpoint_url="http://127.0.0.1:1", region="us-east-1")
    jobs = app.priority_queue("jobs", levels=LEVELS, reserved={"high": 4})
    with pytest.raises(qfan.ConfigError, match="reserved slots"):

        @app.worker(jobs, concurrency=4)
        async def handle(body: Any) -> None: ...

    @app.worker(jobs, concurrency=5)
    async def fine(body: Any) -> None: ...
