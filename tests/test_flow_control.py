"""Flow control against a real emulator (through the recording proxy): rate limits, breakers, backpressure."""

import itertools
import json
from collections.abc import Callable

import anyio
import msgspec
import pytest

import qfan

from .helpers import one_transport_app, wait_for
from .support.proxy import Proxy
from .test_workers import run_until

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)


class Call(msgspec.Struct):
    n: int


def receives(proxy: Proxy, queue_url: str) -> int:
    """ReceiveMessage calls made on ``queue_url`` so far."""
    return sum(json.loads(r.body)["QueueUrl"] == queue_url for r in proxy.calls("ReceiveMessage"))


async def test_rate_limited_handler_starts_stay_within_the_limit(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    """5/s with a burst of 2, 24 messages, 8 handlers: any 1 s holds at most 7 starts (burst + rate), and
    messages waiting for their turn are held (visibility extended), not received again."""
    app = one_transport_app(endpoint_url)
    queue = app.queue(unique_name(), Call, visibility_timeout=2)
    starts: list[float] = []

    @app.worker(queue, name="paced", concurrency=8, rate=qfan.RateLimit(5, burst=2))
    async def paced(call: Call) -> None:
        starts.append(anyio.current_time())

    async with app:
        await queue.send_many([Call(i) for i in range(24)])
        await run_until(app, lambda: len(starts) >= 24)
    starts.sort()
    assert max(sum(1 for s in starts if first <= s < first + 1) for first in starts) <= 7
    assert starts[-1] - starts[0] >= (24 - 2) / 5 * 0.9  # paced, not all at once
    assert app.stats()["paced"].received == 24  # none timed out while waiting its turn


async def test_an_open_breaker_stops_receiving_and_dead_letters_nothing(
    proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """A downstream outage: every handler fails. The breaker opens after 3 failures, the worker receives
    nothing while it is open (counted at the proxy), and no message reaches the dead-letter queue, though
    the worker dead-letters after 2 failed attempts otherwise."""
    app = one_transport_app(proxy.endpoint_url)
    dead = app.queue(unique_name("dlq"), Call)
    queue = app.queue(unique_name(), Call, dead_letter=dead, max_receives=50)
    breaker = qfan.CircuitBreaker(failures=3, window=30, cooldown=4)
    failures: list[float] = []

    @app.worker(
        queue,
        name="outage",
        concurrency=3,
        max_attempts=2,
        backoff=qfan.Backoff(initial=1, maximum=1, jitter=0),
        receive_wait=1,
        breaker=breaker,
    )
    async def outage(call: Call) -> None:
        failures.append(anyio.current_time())
        raise ConnectionError("downstream is down")

    async with app:
        url = (await queue.declare()).url
        await queue.send_many([Call(i) for i in range(6)])
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            await wait_for(lambda: breaker.opened >= 1)
            await anyio.sleep(1.5)  # a long poll already under way when it opened may still finish
            open_receives = receives(proxy, url)
            await anyio.sleep(2)  # still open (4 s cooldown)
            assert breaker.state == "open"
            assert receives(proxy, url) == open_receives
            # Half-open after the cooldown: a probe runs, fails, and opens it again.
            await wait_for(lambda: breaker.opened >= 2)
            app.stop()
        assert await dead.receive(wait=1) == []
    stats = app.stats()["outage"]
    assert stats.dead_lettered == 0
    assert stats.retried >= 3


async def test_no_receive_while_concurrency_and_prefetch_are_full(
    proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = one_transport_app(proxy.endpoint_url)
    queue = app.queue(unique_name(), Call)
    release = anyio.Event()
    handled: list[int] = []

    @app.worker(queue, name="full", concurrency=2, prefetch=2, receive_wait=1)
    async def blocked(call: Call) -> None:
        await release.wait()
        handled.append(call.n)

    async with app:
        url = (await queue.declare()).url
        await queue.send_many([Call(i) for i in range(10)])
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            await wait_for(lambda: app.stats()["full"].in_flight >= 4)
            await anyio.sleep(1.5)  # let a receive already under way come back
            full_receives = receives(proxy, url)
            await anyio.sleep(3)  # three long polls' worth of time: no receive while full
            assert receives(proxy, url) == full_receives
            assert app.stats()["full"].in_flight == 4
            release.set()
            await wait_for(lambda: len(handled) >= 10, 60)
            app.stop()
    assert sorted(handled) == list(range(10))
    assert app.stats()["full"].received == 10


async def test_one_rate_limit_shared_by_two_workers(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    """Passing one RateLimit to two workers paces their starts together."""
    app = one_transport_app(endpoint_url)
    shared = qfan.RateLimit(4, burst=1)
    starts: list[float] = []
    for name in ("left", "right"):
        queue = app.queue(unique_name(name), Call)

        @app.worker(queue, name=name, concurrency=4, rate=shared)
        async def handle(call: Call) -> None:
            starts.append(anyio.current_time())

    async with app:
        for queue in app.workers.values():
            await queue.queue.send_many([Call(i) for i in range(8)])  # type: ignore[union-attr]
        await run_until(app, lambda: len(starts) >= 16)
    starts.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert max(sum(1 for s in starts if first <= s < first + 1) for first in starts) <= 5
    assert sum(gaps) >= 15 / 4 * 0.9
