"""Idempotent handling against a real emulator: SQS for the messages, DynamoDB for the records."""

import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import msgspec
import pytest

import qfan

from .helpers import one_transport_app, wait_for
from .test_workers import run_until

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)


class Payment(msgspec.Struct):
    id: int
    amount: int = 1


def table_name() -> str:
    return f"idem-{uuid.uuid4().hex[:12]}"


# moto's every SQS call costs O(messages in the queue) (see EMULATORS.md): 1,000 messages take it ~2 min.
DUPLICATED_PAYMENTS = {"moto": 150, "ministack": 500}


async def test_forced_duplicates_have_their_side_effect_once(
    endpoint_url: str, emulator_name: str, unique_name: Callable[..., str]
) -> None:
    """Every payment sent twice (1,000 messages on MiniStack): each side effect happens once."""
    payments = DUPLICATED_PAYMENTS[emulator_name]
    app = one_transport_app(endpoint_url)
    queue = app.queue(unique_name(), Payment)
    idempotency = qfan.Idempotency(qfan.DynamoDBIdempotencyStore(table_name()), key=lambda p: str(p.id))
    charged: Counter[int] = Counter()
    handled = 0

    @app.worker(queue, name="charge", concurrency=20, idempotency=idempotency)
    async def charge(payment: Payment) -> None:
        nonlocal handled
        charged[payment.id] += 1

    async with app, anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        for start in range(0, payments, 50):  # in waves, so the emulator's queue stays small
            wave = [Payment(i) for i in range(start, start + 50)]
            await queue.send_many(wave + wave)
        await wait_for(lambda: app.stats()["charge"].succeeded >= 2 * payments, 120)
        app.stop()
    assert sorted(charged) == list(range(payments))
    assert set(charged.values()) == {1}
    assert idempotency.stats.duplicates >= payments  # SQS may add redeliveries of its own
    assert idempotency.stats.ran == payments


async def test_a_copy_handled_at_the_same_moment_is_acked_soon_after_the_run_not_after_the_lease(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    """Two equal sends received together: one runs (2 s), the other finds it in progress and is put back;
    it looks again after about as long as the run has lasted, not after the 300 s lease, and is acked."""
    app = one_transport_app(endpoint_url)
    queue = app.queue(unique_name(), Payment)
    idempotency = qfan.Idempotency(qfan.MemoryIdempotencyStore(), key=lambda p: str(p.id), lease=300)
    runs: list[int] = []

    @app.worker(queue, name="charge", concurrency=2, idempotency=idempotency)
    async def charge(payment: Payment) -> None:
        runs.append(payment.id)
        await anyio.sleep(2)

    async with app:
        await queue.send_many([Payment(3), Payment(3)])
        await run_until(app, lambda: app.stats()["charge"].succeeded >= 2, limit=60)
    assert runs == [3]
    stats = idempotency.stats
    assert (stats.ran, stats.duplicates) == (1, 1)
    assert stats.in_progress >= 1


async def test_without_idempotency_duplicates_run_twice(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app = one_transport_app(endpoint_url)
    queue = app.queue(unique_name(), Payment)
    charged: Counter[int] = Counter()

    @app.worker(queue, name="charge", concurrency=5)
    async def charge(payment: Payment) -> None:
        charged[payment.id] += 1

    async with app:
        wave = [Payment(i) for i in range(20)]
        await queue.send_many(wave + wave)
        await run_until(app, lambda: app.stats()["charge"].succeeded >= 40)
    assert set(charged.values()) == {2}


def two_workers(
    endpoint_url: str, queue_name: str, idempotency: qfan.Idempotency, handler: Callable[..., Any]
) -> tuple[qfan.App, qfan.App, qfan.Queue[Payment]]:
    """Two apps (as two processes would be) running the same worker on one queue and one store.

    Visibility 1 s and no heartbeat (``max_extension=1``): a message reappears while its first run goes on,
    and one message at a time per worker.
    """
    apps, queues = [], []
    for _ in range(2):
        app = one_transport_app(endpoint_url)
        queues.append(app.queue(queue_name, Payment, visibility_timeout=1))
        app.worker(
            queues[-1],
            name="pay",
            concurrency=1,
            prefetch=0,  # a busy worker receives nothing: the redelivery goes to the other one
            max_extension=1,
            receive_wait=1,
            idempotency=idempotency,
        )(handler)
        apps.append(app)
    return apps[0], apps[1], queues[0]


async def run_both(first: qfan.App, second: qfan.App, done: Callable[[], bool], started: anyio.Event) -> None:
    """Run ``first``; once a handler started, ``second`` too; until ``done()``, then stop both."""
    async with first, second, anyio.create_task_group() as tg:
        tg.start_soon(partial(first.run, drain_timeout=1))
        await started.wait()
        tg.start_soon(partial(second.run, drain_timeout=1))
        await wait_for(done, 60)
        first.stop()
        second.stop()


async def test_a_redelivery_waits_for_the_running_one_then_acks_unrun(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    """The default key is the message id: a redelivery while the first run goes on (in another process)
    is put back, and once that run completed it is acked without running."""
    idempotency = qfan.Idempotency(qfan.DynamoDBIdempotencyStore(table_name()), lease=4)
    runs: list[int] = []
    started, finished = anyio.Event(), anyio.Event()

    async def slow(payment: Payment) -> str:
        runs.append(payment.id)
        started.set()
        await anyio.sleep(3)
        finished.set()
        return "charged"

    first, second, queue = two_workers(endpoint_url, unique_name(), idempotency, slow)
    stats = idempotency.stats
    async with first:
        await queue.send(Payment(7))

    until = float("inf")

    def settled() -> bool:  # a redelivery was put back, the run completed, and redeliveries had time
        nonlocal until
        if until == float("inf") and stats.in_progress >= 1 and finished.is_set():
            until = anyio.current_time() + 6  # past the lease: whatever was put back came again
        return anyio.current_time() >= until

    await run_both(first, second, settled, started)
    assert runs == [7]
    assert stats.ran == 1
    async with first:
        assert await queue.receive(wait=1) == []


async def test_a_crashed_run_is_run_again_after_its_lease(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    """The first run never finishes (as if its process died); after the lease another worker runs it."""
    idempotency = qfan.Idempotency(qfan.DynamoDBIdempotencyStore(table_name()), lease=3, ttl=600)
    runs: list[float] = []
    finished: list[float] = []
    started = anyio.Event()

    async def flaky(payment: Payment) -> None:
        runs.append(anyio.current_time())
        started.set()
        if len(runs) == 1:
            await anyio.sleep_forever()  # the crashed run: it never returns (cancelled at the end)
        finished.append(anyio.current_time())

    first, second, queue = two_workers(endpoint_url, unique_name(), idempotency, flaky)
    async with first:
        await queue.send(Payment(1))
    await run_both(first, second, lambda: bool(finished), started)
    assert len(runs) == 2
    assert runs[1] - runs[0] >= 2.5  # not before the lease ran out
    assert idempotency.stats.in_progress >= 1  # redeliveries during the lease were put back, not run


async def test_a_duplicate_request_gets_the_stored_reply(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app = one_transport_app(endpoint_url)
    requests = app.queue(unique_name(), Payment)
    store = qfan.MemoryIdempotencyStore()
    computed: list[int] = []

    @app.responder(requests, idempotency=qfan.Idempotency(store, key=lambda p: str(p.id)))
    async def receipt(payment: Payment) -> dict[str, int]:
        computed.append(payment.id)
        return {"id": payment.id, "serial": len(computed)}

    async with app, anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        first = await app.request(requests, Payment(5), timeout=30)
        again = await app.request(requests, Payment(5), timeout=30)
        app.stop()
    assert first == again == {"id": 5, "serial": 1}
    assert computed == [5]
