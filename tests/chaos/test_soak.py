"""Soak under faults: publish -> SNS fanout -> workers -> ack, with a seeded 10 % of all requests faulted.

Every message id must be processed at least once on every subscribed queue. Duplicates are counted; they may
only come from a reset that hid a successful publish or delete (the client cannot know the server acted, so
it tries again), at most one batch (10) per such fault per queue.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import anyio
import msgspec
import pytest

import qfan

from ..support.emulators import Emulator
from ..support.proxy import FaultPlan, running_proxy
from .report import Row, Sizes, record

pytestmark = pytest.mark.chaos

# A reset after these hides a success: the retried call can make a second copy (publish) or, when the
# retried delete is not recognised, let the message come back (delete).
HIDDEN_SUCCESS = frozenset(
    {
        "sns:Publish",
        "sns:PublishBatch",
        "SendMessage",
        "SendMessageBatch",
        "DeleteMessage",
        "DeleteMessageBatch",
    }
)


class Event(msgspec.Struct):
    id: int


async def test_fanout_soak_under_faults_loses_nothing(
    chaos_server: Emulator, sizes: Sizes, seed: int
) -> None:
    total, prefix = sizes.soak_messages, f"soak-{uuid.uuid4().hex[:8]}"
    seen: dict[str, Counter[int]] = {}
    producer_retries = 0
    with running_proxy(chaos_server.endpoint_url) as proxy:
        app = qfan.App(
            "chaos-soak",
            endpoint_url=proxy.endpoint_url,
            region="us-east-1",
            retry=qfan.RetryPolicy(attempts=8, initial_wait=0.01, max_wait=0.5),
        )
        topic = app.topic(f"{prefix}-events", Event)
        for index in range(sizes.soak_queues):
            queue = app.queue(f"{prefix}-q{index}", Event, visibility_timeout=10)
            app.subscribe(topic, queue)
            counts = seen[queue.name] = Counter()

            def recorder(counts: Counter[int]) -> Callable[[Event], Awaitable[None]]:
                async def handle(event: Event) -> None:
                    counts[event.id] += 1

                return handle

            app.worker(queue, name=queue.name, concurrency=20)(recorder(counts))

        def complete() -> bool:
            return all(len(counts) == total for counts in seen.values())

        started = time.monotonic()
        async with app:  # declared before the faults start: the soak is about the message path
            proxy.plan(FaultPlan(rate=sizes.fault_rate, seed=seed))
            async with anyio.create_task_group() as tg:
                tg.start_soon(app.run)
                for start in range(0, total, 100):
                    chunk = [Event(i) for i in range(start, min(total, start + 100))]
                    while True:
                        try:
                            await topic.publish_many(chunk)
                            break
                        except qfan.QfanError:  # not acknowledged: at-least-once means send it again
                            producer_retries += 1
                with anyio.move_on_after(sizes.soak_bound):
                    while not complete():  # noqa: ASYNC110 - polling counters the workers update
                        await anyio.sleep(0.2)
                await anyio.sleep(2)  # let late duplicates show up in the count
                proxy.plan(None)
                app.stop()
        seconds = time.monotonic() - started
        injected = proxy.injected
    lost = {name: sorted(set(range(total)) - set(counts)) for name, counts in seen.items()}
    duplicated = sum(n - 1 for counts in seen.values() for n in counts.values() if n > 1)
    hidden = sum(
        n for (label, kind), n in injected.items() if kind == "reset_after" and label in HIDDEN_SUCCESS
    )
    by_kind: Counter[str] = Counter()
    for (_, kind), n in injected.items():
        by_kind[kind] += n
    record(
        Row(
            f"soak: publish -> {sizes.soak_queues} queues, {sizes.fault_rate:.0%} faulted",
            total * sizes.soak_queues,
            sum(injected.values()),
            sum(map(len, lost.values())),
            duplicated,
            sum(s.dead_lettered for s in app.stats().values()),
            seconds,
            {
                "faults_by_kind": dict(by_kind),
                "hidden_success_resets": hidden,
                "producer_retries": producer_retries,
            },
        )
    )
    assert not any(lost.values()), {name: ids[:20] for name, ids in lost.items()}
    assert sum(injected.values()) > 0
    assert duplicated <= 10 * sizes.soak_queues * hidden, (duplicated, hidden)
    assert all(s.dead_lettered == 0 for s in app.stats().values())


async def test_handlers_longer_than_the_visibility_timeout_under_faults(
    chaos_server: Emulator, sizes: Sizes, seed: int
) -> None:
    """The visibility heartbeat keeps working through faults: slow handlers' messages are not lost.

    Each handler runs twice the visibility timeout, so every message lives on heartbeat extensions, which the
    proxy faults like any other request. A duplicate here would mean an extension failed after every retry
    (counted and reported, not asserted: at-least-once allows it).
    """
    total, rate = max(40, sizes.soak_messages // 50), max(0.3, sizes.fault_rate)  # few requests: fault more
    seen: Counter[int] = Counter()
    started = time.monotonic()
    with running_proxy(chaos_server.endpoint_url) as proxy:
        app = qfan.App("chaos-heartbeat", endpoint_url=proxy.endpoint_url, region="us-east-1")
        queue = app.queue(f"heartbeat-{uuid.uuid4().hex[:8]}", Event, visibility_timeout=2)

        @app.worker(queue, name="slow", concurrency=40, prefetch=10)
        async def handle(event: Event) -> None:
            await anyio.sleep(4)
            seen[event.id] += 1

        async with app:
            await queue.send_many([Event(i) for i in range(total)])
            proxy.plan(FaultPlan(rate=rate, seed=seed))
            async with anyio.create_task_group() as tg:
                tg.start_soon(app.run)
                with anyio.move_on_after(sizes.soak_bound):
                    while len(seen) < total:  # noqa: ASYNC110 - polling counters the workers update
                        await anyio.sleep(0.2)
                await anyio.sleep(3)
                proxy.plan(None)
                app.stop()
        injected = proxy.injected
    lost = sorted(set(range(total)) - set(seen))
    record(
        Row(
            f"heartbeat: 4 s handlers, 2 s visibility, {rate:.0%} faulted",
            total,
            sum(injected.values()),
            len(lost),
            sum(n - 1 for n in seen.values()),
            app.stats()["slow"].dead_lettered,
            time.monotonic() - started,
            {"faults": {f"{label} {kind}": n for (label, kind), n in injected.items()}},
        )
    )
    assert not lost, lost
