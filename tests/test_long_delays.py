"""Delays beyond SQS's 15 minutes against a real emulator: hops, due times, restarts, offload, FIFO."""

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
import msgspec
import pytest

import qfan

from .helpers import one_transport_app, wait_for
from .support.proxy import Proxy, server_error

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)


class Reminder(msgspec.Struct):
    text: str


class FastClock:
    """Wall-clock seconds running ``speed`` times faster than real time (a 40-minute delay in 4 s)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.origin = (time.time(), time.monotonic())

    def __call__(self) -> float:
        wall, mono = self.origin
        return wall + (time.monotonic() - mono) * self.speed


async def first_receive(queue: qfan.Queue[Reminder]) -> list[qfan.Message[Reminder]]:
    """Receive (1 s long polls) until something comes."""
    with anyio.fail_after(30):
        while True:
            received = await queue.receive(wait=1)
            if received:
                return received


def sends_to(proxy: Proxy, queue_url: str) -> int:
    """Messages sent to ``queue_url`` (SendMessageBatch entries) so far."""
    return sum(
        len(json.loads(call.body)["Entries"])
        for call in proxy.calls("SendMessageBatch")
        if json.loads(call.body)["QueueUrl"] == queue_url
    )


async def test_a_forty_minute_delay_is_delivered_once_after_it_is_due(
    proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """Sent by one app, which then stops; handled by another (a restart in between): once, when due, on
    its first receive, after several hops."""
    clock = FastClock(600)
    delays = qfan.LongDelays(hop=1, clock=clock)
    name = unique_name()
    sender = one_transport_app(proxy.endpoint_url, long_delays=delays)
    queue = sender.queue(name, Reminder)
    async with sender:
        url = (await queue.declare()).url
        due = clock() + 40 * 60
        await queue.send(Reminder("call back"), delay=timedelta(minutes=40))

    worker = one_transport_app(proxy.endpoint_url, long_delays=delays)
    seen: list[tuple[float, int, str]] = []

    @worker.worker(worker.queue(name, Reminder), name="remind", receive_wait=1)
    async def remind(reminder: Reminder, message: qfan.Message[Reminder]) -> None:
        seen.append((clock(), message.receive_count, reminder.text))

    async with worker, anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        await wait_for(lambda: bool(seen), 60)
        hops = sends_to(proxy, url)
        await anyio.sleep(2.5)  # a while longer: it does not come again
        worker.stop()
    assert len(seen) == 1
    handled_at, receive_count, text = seen[0]
    assert handled_at >= due
    assert (receive_count, text) == (1, "call back")
    assert hops >= 3  # the first send and at least two hops (1 s each: 600 s of the fast clock)


async def test_delay_until_with_offload_resends_the_pointer_not_the_payload(
    proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    """An offloaded message is uploaded once, re-queued as its pointer, and fetched once, when due."""
    bucket = f"qfan-test-{uuid.uuid4().hex[:12]}"
    app = one_transport_app(proxy.endpoint_url, long_delays=qfan.LongDelays(hop=1))
    queue = app.queue(unique_name(), Reminder, offload=qfan.Offload(bucket, always=True))
    async with app:
        url = (await queue.declare()).url
        due = datetime.now(UTC) + timedelta(seconds=3.5)
        await queue.send(Reminder("big"), delay_until=due)
        received = await first_receive(queue)
        assert datetime.now(UTC) >= due
        [message] = received
        assert message.body == Reminder("big")
        assert message.receive_count == 1
        await message.ack()
        assert await queue.receive(wait=1) == []
    objects = [(r.method, r.path) for r in proxy.s3_calls(bucket) if r.path.startswith(f"/{bucket}/")]
    assert [method for method, _ in objects].count("PUT") == 1
    assert [method for method, _ in objects].count("GET") == 1  # not fetched while it was not due
    assert sends_to(proxy, url) >= 3


async def test_long_delays_need_a_standard_queue(endpoint_url: str, unique_name: Callable[..., str]) -> None:
    app = one_transport_app(endpoint_url)
    fifo = app.queue(unique_name(fifo=True), content_based_dedup=True)
    plain = app.queue(unique_name())
    async with app:
        with pytest.raises(qfan.ConfigError, match="standard queue"):
            await fifo.send("x", group_id="g", delay=timedelta(hours=6))
        with pytest.raises(qfan.ConfigError, match="per-message delay"):
            await fifo.send("x", group_id="g", delay=60)  # FIFO takes no per-message delay at all
        with pytest.raises(qfan.ConfigError, match="not both"):
            await plain.send("x", delay=5, delay_until=datetime.now(UTC))
        assert await plain.receive(wait=0) == []


async def test_a_failed_hop_keeps_the_original(proxy: Proxy, unique_name: Callable[..., str]) -> None:
    """The original is deleted only after its next hop was sent: when that send fails, the original comes
    back after its visibility timeout and is re-queued then; nothing is lost, nothing doubled."""
    app = one_transport_app(proxy.endpoint_url, long_delays=qfan.LongDelays(hop=1))
    queue = app.queue(unique_name(), Reminder, visibility_timeout=1)
    async with app:
        await queue.send(Reminder("persistent"), delay=3)
        # The first hop's send fails on every one of its 5 attempts (the server never sees it).
        proxy.inject("SendMessageBatch", server_error(), times=5)
        received = await first_receive(queue)
        assert [m.body for m in received] == [Reminder("persistent")]
        await received[0].ack()
        assert await queue.receive(wait=2) == []
    assert proxy.pending() == {}  # the faults were used
