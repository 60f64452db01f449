"""Workers against a real emulator: bounds, heartbeats, outcomes, dead letters, FIFO groups, batches."""

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import pytest

import qfan

from .helpers import AppFactory, wait_for
from .support.proxy import Proxy, latency, server_error


class Job(msgspec.Struct):
    n: int
    group: str = ""


async def run_until(app: qfan.App, done: Callable[[], bool], limit: float = 60) -> None:
    """Run the app's workers until ``done()`` holds (polled), then stop them gracefully."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        with anyio.fail_after(limit):
            while not done():  # noqa: ASYNC110 - polling a plain predicate the handlers update
                await anyio.sleep(0.05)
        app.stop()


class Other(msgspec.Struct):
    x: int


FAST = qfan.Backoff(initial=0, maximum=1, jitter=0)


async def test_concurrency_and_holding_bounds(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    queue = app.queue(unique_name(), Job)
    running, peak, peak_held, done = 0, 0, 0, []

    @app.worker(queue, name="bounded", concurrency=4, prefetch=3)
    async def handle(job: Job) -> None:
        nonlocal running, peak, peak_held
        running += 1
        peak = max(peak, running)
        peak_held = max(peak_held, app.stats()["bounded"].in_flight)
        await anyio.sleep(0.05)
        running -= 1
        done.append(job.n)

    async with app:
        await queue.send_many([Job(i) for i in range(30)])
        await run_until(app, lambda: len(done) >= 30)
    assert sorted(done) == list(range(30))
    assert peak == 4
    assert peak_held <= 4 + 3


async def test_heartbeat_keeps_a_long_handler_from_running_twice(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), visibility_timeout=2)
    calls: list[float] = []

    @app.worker(queue, name="slow")
    async def slow(body: str) -> None:
        calls.append(time.monotonic())
        await anyio.sleep(7)  # 3.5 times the visibility timeout

    async with app:
        await queue.send("long job")
        await run_until(app, lambda: app.stats()["slow"].succeeded == 1, limit=30)
        await anyio.sleep(2.5)  # past one more visibility timeout: nothing reappears
        assert await queue.receive(wait=0) == []
    assert len(calls) == 1
    assert app.stats()["slow"].received == 1


async def test_failures_back_off_then_dead_letter_with_the_reason(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), Job, dead_letter=dead, max_receives=3, visibility_timeout=5)
    attempts: list[float] = []

    @app.worker(queue, name="failing", backoff=qfan.Backoff(initial=1, maximum=1, jitter=0))
    async def failing(job: Job) -> None:
        attempts.append(time.monotonic())
        raise ValueError(f"boom {job.n}")

    async with app:
        await queue.send(Job(42))
        await run_until(app, lambda: app.stats()["failing"].dead_lettered == 1)
        [copy] = await dead.receive(wait=5)
    assert len(attempts) == 3
    assert all(later - earlier >= 0.7 for earlier, later in itertools.pairwise(attempts))
    assert copy.body == {"n": 42, "group": ""}
    assert copy.attributes["dead-letter-reason"] == "failed 3 times: ValueError: boom 42"
    assert copy.attributes["dead-letter-error"] == "ValueError"
    assert copy.attributes["dead-letter-receive-count"] == 3
    assert copy.attributes["dead-letter-source"] == queue.name
    assert app.stats()["failing"].retried == 2


async def test_poison_is_dead_lettered_on_first_receive(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), dead_letter=dead, max_receives=5)
    handled: list[Job] = []

    @app.worker(queue, name="typed")
    async def typed(job: Job) -> None:
        handled.append(job)

    async with app:
        await queue.send("definitely not a Job")
        await queue.send({"n": "wrong type"})
        await queue.send({"n": 1})
        await run_until(app, lambda: app.stats()["typed"].dead_lettered == 2 and len(handled) == 1)
        copies = await dead.receive(wait=5)
        while len(copies) < 2:
            copies += await dead.receive(wait=2)
    assert handled == [Job(1)]
    assert {c.attributes["dead-letter-error"] for c in copies} == {"DecodeError"}
    assert {c.attributes["dead-letter-receive-count"] for c in copies} == {1}
    assert {c.raw_body for c in copies} == {"definitely not a Job", '{"n":"wrong type"}'}


async def test_handler_outcomes(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), dead_letter=dead, max_receives=5)
    seen: Counter[str] = Counter()

    @app.worker(queue, name="outcomes", backoff=FAST)
    async def outcomes(body: str, message: qfan.Message[str]) -> None:
        seen[body] += 1
        if body == "reject":
            raise qfan.Reject("not for us")
        if body == "retry" and message.receive_count == 1:
            raise qfan.Retry(delay=0)
        if body == "ack":
            raise qfan.Ack()
        if body == "self-ack":
            await message.ack()

    async with app:
        await queue.send_many(["reject", "retry", "ack", "self-ack"])
        await run_until(app, lambda: app.stats()["outcomes"].succeeded == 3)
        [rejected] = await dead.receive(wait=5)
        assert await queue.receive(wait=1) == []
    assert rejected.body == "reject"
    assert rejected.attributes["dead-letter-reason"] == "rejected: not for us"
    assert seen == {"reject": 1, "retry": 2, "ack": 1, "self-ack": 1}


async def test_fifo_groups_in_order_and_one_at_a_time(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(fifo=True), Job, content_based_dedup=True)
    order: dict[str, list[int]] = defaultdict(list)
    busy: set[str] = set()
    overlaps: list[str] = []

    # moto's FIFO long polls miss groups freed while they wait: keep polls short
    @app.worker(queue, name="fifo", concurrency=16, receive_wait=1)
    async def fifo(job: Job) -> None:
        if job.group in busy:
            overlaps.append(job.group)
        busy.add(job.group)
        await anyio.sleep(0.01 * (job.n % 3))
        order[job.group].append(job.n)
        busy.discard(job.group)

    groups = [f"g{i}" for i in range(8)]
    async with app:
        for n in range(5):
            for g in groups:
                await queue.send(Job(n, g), group_id=g)
        await run_until(app, lambda: sum(map(len, order.values())) >= 40)
    assert overlaps == []
    assert dict(order) == {g: list(range(5)) for g in groups}


async def test_a_fifo_failure_holds_back_the_rest_of_its_group(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(fifo=True), Job, content_based_dedup=True, visibility_timeout=5)
    handled: list[int] = []
    failed_once: set[int] = set()

    @app.worker(queue, name="fifo-fail", concurrency=4, backoff=FAST, receive_wait=1)
    async def fifo_fail(job: Job) -> None:
        if job.n == 1 and 1 not in failed_once:
            failed_once.add(1)
            raise RuntimeError("first try of 1 fails")
        handled.append(job.n)

    async with app:
        for n in range(4):
            await queue.send(Job(n, "g"), group_id="g")
        await run_until(app, lambda: len(handled) >= 4)
    assert handled == [0, 1, 2, 3]


async def test_batch_handler_partial_failure(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    queue = app.queue(unique_name(), Job)
    attempts: Counter[int] = Counter()

    @app.worker(queue, name="batch", batch_size=5, backoff=FAST)
    async def batch(messages: list[qfan.Message[Job]]) -> list[qfan.Message[Job]]:
        for message in messages:
            attempts[message.body.n] += 1
        return [m for m in messages if m.body.n % 2 and m.receive_count == 1]

    async with app:
        await queue.send_many([Job(i) for i in range(10)])
        await run_until(app, lambda: app.stats()["batch"].succeeded >= 10)
    assert {n: attempts[n] for n in range(10)} == {n: 2 if n % 2 else 1 for n in range(10)}
    assert app.stats()["batch"].retried == 5


async def test_sync_handler_runs_in_a_thread(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    import threading

    app = make_app()
    queue = app.queue(unique_name(), Job)
    threads: set[str] = set()

    @app.worker(queue, name="sync", concurrency=2)
    def sync(job: Job) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.01)

    async with app:
        await queue.send_many([Job(i) for i in range(6)])
        await run_until(app, lambda: app.stats()["sync"].succeeded >= 6)
    assert threading.main_thread().name not in threads


async def test_middleware_hooks_and_direct_calls(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), Job)
    events: list[str] = []

    @app.middleware
    async def trace(message: qfan.Message[Any], call_next: Callable[[], Any]) -> None:
        events.append(f"before {message.body['n'] if isinstance(message.body, dict) else message.body.n}")
        await call_next()
        events.append("after")

    @app.on_startup
    async def started() -> None:
        events.append("startup")

    @app.on_shutdown
    async def stopped() -> None:
        events.append("shutdown")

    @app.worker(queue, name="traced")
    async def traced(job: Job) -> int:
        events.append(f"handle {job.n}")
        return job.n * 2

    assert await traced(Job(21)) == 42  # the decorated function is still the plain function
    async with app:
        await queue.send(Job(1))
        await run_until(app, lambda: app.stats()["traced"].succeeded == 1)
    assert events == ["handle 21", "startup", "before 1", "handle 1", "after", "shutdown"]


def test_bad_registrations() -> None:
    app = qfan.App()
    queue = app.queue("q")
    with pytest.raises(qfan.ConfigError, match=r"must take \(messages"):

        @app.worker(queue, batch_size=5)
        async def not_batch(job: Job) -> None: ...

    with pytest.raises(qfan.ConfigError, match="batch_size"):

        @app.worker(queue)
        async def batch_without_size(messages: list[qfan.Message[Job]]) -> None: ...

    with pytest.raises(qfan.ConfigError, match="must take"):

        @app.worker(queue)
        async def too_many(job: Job, message: qfan.Message[Job], extra: int) -> None: ...

    with pytest.raises(qfan.ConfigError, match="cannot decode into"):

        @app.worker(queue)
        async def ambiguous(thing: Job | Other) -> None: ...  # untagged struct union: msgspec refuses

    with pytest.raises(qfan.ConfigError, match="not registered"):

        @app.worker(qfan.App().queue("elsewhere"))
        async def elsewhere(job: Job) -> None: ...

    @app.worker(queue, name="dup")
    async def first(job: Job) -> None: ...

    with pytest.raises(qfan.ConfigError, match="already registered"):

        @app.worker(queue, name="dup")
        async def second(job: Job) -> None: ...


async def test_a_stop_before_run_starts_is_not_lost(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name())
    handled: list[str] = []

    @app.worker(queue, name="early-stop")
    async def early_stop(body: str) -> None:
        handled.append(body)

    async with app:
        app.stop()  # e.g. a signal while the process is still starting
        with anyio.fail_after(30):
            await app.run()  # returns at once instead of running forever
        await queue.send("after")
        await run_until(app, lambda: handled == ["after"])  # and a later run starts afresh


async def test_a_slow_delete_does_not_hold_the_worker_and_stop_waits_for_it(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """A handled message's slot is free once its delete is queued: more messages than the worker may hold are
    handled while no delete has come back yet; the heartbeat keeps them meanwhile, and stopping waits for the
    deletes."""
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), Job, visibility_timeout=30)
    done: list[int] = []
    at_last_handled: dict[str, int] = {}

    @app.worker(queue, name="quick", concurrency=2, prefetch=2)
    async def handle(job: Job) -> None:
        done.append(job.n)
        if len(done) == 6:
            stats = app.stats()["quick"]
            at_last_handled["succeeded"] = stats.succeeded

    async with app:
        await queue.send_many([Job(i) for i in range(6)])
        proxy.inject("DeleteMessageBatch", latency(5), times=6)  # every delete batch takes 5 s
        await run_until(app, lambda: len(done) == 6, limit=30)  # stops at once: the deletes are pending
        stats = app.stats()["quick"]
        assert stats.succeeded == 6  # run() returned only once every delete was acknowledged
        assert await queue.receive(wait=0) == []
    assert sorted(done) == list(range(6))
    # Six messages through four slots (concurrency + prefetch), while none of their deletes had come back.
    assert at_last_handled["succeeded"] == 0
    assert stats.in_flight == 0


async def test_a_queued_delete_that_fails_brings_the_message_back(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """The delete is not awaited by the handler's runner, but its failure is not lost: the message is
    delivered again after its visibility timeout and handled again (at least once)."""
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), Job, visibility_timeout=3)
    handled: Counter[int] = Counter()

    @app.worker(queue, name="redelivered", concurrency=1, prefetch=0)
    async def handle(job: Job) -> None:
        handled[job.n] += 1

    async with app:
        await queue.send(Job(7))
        proxy.inject("DeleteMessageBatch", server_error(500), times=5)  # every retry of the first delete
        await run_until(app, lambda: app.stats()["redelivered"].succeeded == 1, limit=30)
        assert await queue.receive(wait=0) == []
    assert handled[7] == 2
    assert app.stats()["redelivered"].received == 2


async def test_when_deletes_slow_down_pending_ones_are_bounded_and_intake_waits(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """At most 4 x (concurrency + prefetch) deletes are pending: past that the runner waits for its own
    delete, so a slow DeleteMessageBatch slows intake down instead of piling up handled messages."""
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), Job, visibility_timeout=30)
    done: list[int] = []

    @app.worker(queue, name="bounded-deletes", concurrency=1, prefetch=0)  # holds 1: 4 pending at most
    async def handle(job: Job) -> None:
        done.append(job.n)

    async with app:
        await queue.send_many([Job(i) for i in range(8)])
        proxy.inject("DeleteMessageBatch", latency(4), times=8)
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            await wait_for(lambda: len(done) == 5, limit=20)  # 4 queued, the 5th's runner waits for it
            await anyio.sleep(1)
            stuck_at, succeeded = len(done), app.stats()["bounded-deletes"].succeeded
            await wait_for(lambda: app.stats()["bounded-deletes"].succeeded == 8, limit=60)
            app.stop()
    assert (stuck_at, succeeded) == (5, 0)
    assert sorted(done) == list(range(8))
