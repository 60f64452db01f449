"""qfan.testing's harness and pytest fixtures, on the in-memory transport (no emulator, no network).

The fixtures are imported from the plugin module here; a user's project loads the plugin with
``pytest_plugins = ["qfan.testing.pytest_plugin"]`` in its conftest.py (or ``-p``), as the pytester test does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import pytest

import qfan
from qfan.testing import Delivery, Harness, MemoryTransport
from qfan.testing.pytest_plugin import HarnessFactory, memory_transport, qfan_harness  # noqa: F401

pytest_plugins = ("pytester",)


class Order(msgspec.Struct):
    id: int
    item: str = "pen"


def shop(transport: MemoryTransport | None = None) -> tuple[qfan.App, qfan.Queue[Order], qfan.Queue[Any]]:
    """An app on the memory planes with an ``orders`` queue (dead-letter queue ``orders-dlq``)."""
    app = qfan.App("shop", transport=transport or MemoryTransport())
    dead = app.queue("orders-dlq")
    return app, app.queue("orders", Order, dead_letter=dead, max_receives=5), dead


async def wait_for(done: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not done():  # noqa: ASYNC110 - polling what the harness records
            await anyio.sleep(0.01)


async def test_a_handler_that_returns_is_acked() -> None:
    app, orders, _ = shop()
    seen: list[Order] = []

    @app.worker(orders)
    async def handle(order: Order) -> None:
        seen.append(order)

    async with Harness(app) as harness:
        result = await harness.deliver(orders, Order(1, "ink"), attributes={"source": "web"})
        assert await orders.receive(wait=0) == []  # deleted, not only decided
    assert isinstance(result, Delivery)
    assert result.outcome == "acked"
    assert (result.acked, result.retried, result.dead_lettered) == (True, False, False)
    assert (result.error, result.reason, result.retry_after) == (None, None, None)
    assert seen == [Order(1, "ink")]
    assert result.message.body == Order(1, "ink")
    assert result.message.attributes == {"source": "web"}
    assert harness.deliveries == [result]


async def test_reject_is_dead_lettered_with_its_reason() -> None:
    app, orders, dead = shop()

    @app.worker(orders)
    async def handle(order: Order) -> None:
        raise qfan.Reject(f"item {order.item!r} is discontinued")

    async with Harness(app) as harness:
        result = await harness.deliver(orders, Order(2, "quill"))
        [copy] = await dead.receive(wait=0)  # already copied when deliver() returns
    assert result.dead_lettered
    assert result.reason == "rejected: item 'quill' is discontinued"
    assert isinstance(result.error, qfan.Reject)
    assert copy.attributes["dead-letter-reason"] == result.reason
    assert copy.message_id != result.message.message_id


async def test_retry_is_reported_without_waiting_for_the_redelivery() -> None:
    app, orders, _ = shop()

    @app.worker(orders)
    async def handle(order: Order) -> None:
        raise qfan.Retry(delay=30)

    async with Harness(app) as harness:
        result = await harness.deliver(orders, Order(3), timeout=5)
        assert await orders.receive(wait=0) == []  # invisible for the 30 s: given back with that delay
    assert result.retried
    assert result.retry_after == 30
    assert isinstance(result.error, qfan.Retry)
    assert len(harness.deliveries) == 1


async def test_a_failing_handler_backs_off_then_is_dead_lettered_after_max_attempts() -> None:
    app, _, dead = shop()
    slow, fast = app.queue("slow"), app.queue("fast", dead_letter=dead)
    attempts: list[int] = []

    @app.worker(slow, backoff=qfan.Backoff(initial=7, maximum=60, jitter=0))
    async def handle_slow(message: qfan.Message[Any]) -> None:
        raise ValueError("boom")

    @app.worker(fast, max_attempts=3, backoff=qfan.Backoff(initial=0, maximum=0, jitter=0))
    async def handle_fast(message: qfan.Message[Any]) -> None:
        attempts.append(message.receive_count)
        raise ValueError("boom")

    async with Harness(app) as harness:
        first = await harness.deliver(slow, {"n": 1})
        retried = await harness.deliver(fast, {"n": 2})
        await wait_for(lambda: any(d.dead_lettered for d in harness.deliveries))
    assert (first.retried, first.retry_after, first.undeliverable) == (True, 7, False)
    assert isinstance(first.error, ValueError)
    assert (retried.retried, retried.retry_after) == (True, 0)
    assert attempts == [1, 2, 3]
    last = harness.deliveries[-1]
    assert last.message.message_id == retried.message.message_id
    assert last.reason == "failed 3 times: ValueError: boom"
    assert isinstance(last.error, ValueError)


async def test_failing_without_a_dead_letter_queue_is_retried_and_flagged_undeliverable() -> None:
    app = qfan.App("shop", transport=MemoryTransport())
    plain = app.queue("plain")

    @app.worker(plain, max_attempts=1, backoff=qfan.Backoff(initial=1, maximum=120, jitter=0))
    async def handle(message: qfan.Message[Any]) -> None:
        raise qfan.Reject("nowhere to go")

    async with Harness(app) as harness:
        result = await harness.deliver(plain, "x")
    assert (result.retried, result.undeliverable, result.retry_after) == (True, True, 120)
    assert result.reason == "rejected: nowhere to go"


async def test_a_poison_body_is_dead_lettered_without_reaching_the_handler() -> None:
    app, orders, dead = shop()
    handled: list[Order] = []

    @app.worker(orders)
    async def handle(order: Order) -> None:
        handled.append(order)

    async with Harness(app) as harness:
        garbage = await harness.deliver_raw(orders, "{not json", attributes={"producer": "legacy"})
        wrong = await harness.deliver_raw(orders, '{"id": "one"}')
        [first, second] = await dead.receive(wait=0)
    for result in (garbage, wrong):
        assert result.dead_lettered
        assert str(result.reason).startswith("poison message: ")
        assert isinstance(result.error, qfan.DecodeError)
    assert garbage.message.raw_body == "{not json"
    assert garbage.message.attributes == {"producer": "legacy"}
    assert {first.raw_body, second.raw_body} == {"{not json", '{"id": "one"}'}
    assert handled == []


async def test_fifo_queue() -> None:
    app = qfan.App("shop", transport=MemoryTransport())
    bookings = app.queue("bookings.fifo", Order, content_based_dedup=True)

    @app.worker(bookings)
    async def handle(order: Order) -> None:
        if order.id < 0:
            raise qfan.Retry(delay=60)

    async with Harness(app) as harness:
        first = await harness.deliver(bookings, Order(1), group_id="alice")
        second = await harness.deliver(bookings, Order(2), group_id="alice", dedup_id="two")
        failed = await harness.deliver(bookings, Order(-1), group_id="bob")
        with pytest.raises(TimeoutError, match=r"not received within .*group"):  # bob's group is stuck
            await harness.deliver(bookings, Order(3), group_id="bob", timeout=0.3)
    assert [first.outcome, second.outcome] == ["acked", "acked"]
    assert (first.message.group_id, second.message.dedup_id) == ("alice", "two")
    assert int(second.message.sequence_number or 0) > int(first.message.sequence_number or 0)
    assert (failed.outcome, failed.retry_after) == ("retried", 60)


async def test_priority_queue() -> None:
    app = qfan.App("shop", transport=MemoryTransport())
    jobs = app.priority_queue("jobs", Order, levels={"high": 3, "low": 1}, default="low")
    levels: list[str] = []

    @app.worker(jobs)
    async def handle(order: Order, message: qfan.Message[Order]) -> None:
        levels.append(jobs.level_of(message))

    async with Harness(app) as harness:
        high = await harness.deliver(jobs, Order(1), priority="high")
        low = await harness.deliver(jobs, Order(2))
        direct = await harness.deliver(jobs.level("high"), Order(3))
        raw = await harness.deliver_raw(jobs, "garbage", priority="high")
    assert [high.outcome, low.outcome, direct.outcome] == ["acked"] * 3
    assert levels == ["high", "low", "high"]
    assert (raw.retried, raw.undeliverable) == (True, True)  # no dead-letter queue on these levels
    assert str(raw.reason).startswith("poison message: ")


async def test_a_topic_subscription_is_handled_by_the_queue_worker() -> None:
    app, orders, _ = shop()
    topic = app.topic("orders-placed", Order)
    app.subscribe(topic, orders, raw=False)
    seen: list[Order] = []

    @app.worker(orders)
    async def handle(order: Order) -> None:
        seen.append(order)

    async with Harness(app) as harness:
        await topic.publish(Order(4))
        await wait_for(lambda: bool(harness.deliveries))
    [result] = harness.deliveries
    assert result.acked
    assert seen == [Order(4)]
    assert result.message.sns is not None  # it came wrapped in SNS's envelope


async def test_request_response_through_a_responder() -> None:
    app, orders, _ = shop()

    @app.responder(orders)
    async def price(order: Order) -> int:
        return order.id * 100

    async with Harness(app) as harness:
        assert await app.request(orders, Order(7), response_type=int, timeout=5) == 700
        plain = await harness.deliver(orders, Order(8))  # no reply address: handled like any worker's
    assert plain.acked
    assert app.rpc_stats.replied == 1


async def test_errors_say_what_went_wrong() -> None:
    app, orders, _ = shop()
    idle = app.queue("idle")
    release = anyio.Event()

    @app.worker(orders)
    async def handle(order: Order) -> None:
        await release.wait()

    with pytest.raises(qfan.QfanError, match="not running"):
        await Harness(app).deliver(orders, Order(1))
    async with Harness(app) as harness:
        with pytest.raises(qfan.ConfigError, match="no running worker consumes"):
            await harness.deliver(idle, "x")
        with pytest.raises(qfan.ConfigError, match="priority queues"):
            await harness.deliver(orders, Order(1), priority="high")
        with pytest.raises(TimeoutError, match="handler is still running"):
            await harness.deliver(orders, Order(2), timeout=0.2)
        release.set()
    with pytest.raises(qfan.ConfigError, match="no such workers"):
        await Harness(app, workers=["nope"]).__aenter__()


async def test_the_harness_leaves_an_open_app_open_and_closes_one_it_opened() -> None:
    app, orders, _ = shop()

    @app.worker(orders)
    async def handle(order: Order) -> None:
        pass

    async with app:
        async with Harness(app) as harness:
            assert (await harness.deliver(orders, Order(1))).acked
        assert await orders.send(Order(2))  # still open
        async with Harness(app) as again:  # a second harness on the same app: hooks are not doubled
            assert (await again.deliver(orders, Order(3))).acked
            await wait_for(lambda: len(again.deliveries) >= 2)
        ids = [d.message.message_id for d in again.deliveries]
        assert len(ids) == len(set(ids)) == 2  # Order(2) and Order(3), each settled once
    with pytest.raises(qfan.QfanError, match="not open"):
        await orders.send(Order(4))


async def test_the_pytest_fixtures(memory_transport: MemoryTransport, qfan_harness: HarnessFactory) -> None:  # noqa: F811
    app, orders, _ = shop(memory_transport)

    @app.worker(orders)
    async def handle(order: Order) -> None:
        if order.id == 0:
            raise qfan.Reject("zero")

    with pytest.raises(qfan.ConfigError, match="no such workers"):  # raised here, not at teardown
        await qfan_harness(app, workers=["nope"])
    harness = await qfan_harness(app)
    assert (await harness.deliver(orders, Order(1))).acked
    assert (await harness.deliver(orders, Order(0))).reason == "rejected: zero"
    assert "orders" in [url.rsplit("/", 1)[-1] for url in await memory_transport.sqs.list_queues("")]


def test_the_plugin_in_a_project_using_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    """As a user's project would use it: marked tests, the harness stopped (its app closed) at teardown."""
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import asyncio, pytest, qfan

        APPS = []

        @pytest.mark.asyncio
        async def test_one(memory_transport, qfan_harness):
            app = qfan.App("shop", transport=memory_transport)
            orders = app.queue("orders")

            @app.worker(orders)
            async def handle(body: dict) -> None:
                if body["n"] < 0:
                    raise qfan.Retry(delay=5)

            APPS.append(orders)
            harness = await qfan_harness(app)
            assert (await harness.deliver(orders, {"n": 1})).acked
            assert (await harness.deliver(orders, {"n": -1})).retry_after == 5

        def test_closed_after_teardown():
            with pytest.raises(qfan.QfanError, match="not open"):
                asyncio.run(APPS[0].send({"n": 2}))
        """
    )
    result = pytester.runpytest_subprocess("-p", "qfan.testing.pytest_plugin", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
