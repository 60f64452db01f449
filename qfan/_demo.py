"""``qfan demo``: typed messages through a standard and a FIFO queue, and one too large for SQS through S3.

Producers and consumers run at the same time so that the backlog stays small: the embedded emulator (moto)
spends time proportional to a queue's length on every call.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec

from ._app._app import App
from ._pipeline._message import Message
from ._pipeline._offload import Offload
from ._resources._queue import Queue
from ._resources._topic import Topic

T = TypeVar("T")

_PHASE_TIMEOUT = 900.0
# The embedded emulator's calls cost time proportional to the queue's length: keep the backlog short.
_WINDOW = 40


class Order(msgspec.Struct, frozen=True):
    """A typed demo message."""

    order_id: int
    customer: str
    amount_cents: int


class Booking(msgspec.Struct, frozen=True):
    """A typed demo message for the FIFO queue: ``seq`` counts up within each customer's group."""

    customer: str
    seq: int
    seat: str


class Scan(msgspec.Struct, frozen=True):
    """A typed demo message larger than SQS accepts: it travels through S3."""

    name: str
    pixels: bytes


@dataclass
class PhaseReport:
    """What one phase of the demo observed."""

    name: str
    sent: int = 0
    received: int = 0
    distinct: int = 0
    duplicates: int = 0
    missing: int = 0
    send_seconds: float = 0.0
    total_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and not self.problems

    def line(self, tag: str = "") -> str:
        """One line: counts, timings and the rate (``tag`` says what was measured, e.g. ``(emulator)``)."""
        rate = self.received / self.total_seconds if self.total_seconds else 0.0
        verdict = "OK" if self.ok else "FAILED: " + "; ".join(self.problems or [f"{self.missing} missing"])
        return (
            f"{self.name:<10} sent {self.sent:>5}  received {self.distinct:>5} distinct "
            f"({self.duplicates} duplicates, {self.missing} missing)  "
            f"send {self.send_seconds:6.2f}s  end-to-end {self.total_seconds:6.2f}s  "
            f"{rate:7.0f} msg/s{' ' + tag if tag else ''}  {verdict}"
        )


async def _phase(
    report: PhaseReport,
    queue: Queue[T],
    make: Callable[[int], tuple[T, str | None]],
    key: Callable[[T], Hashable],
    window: int,
) -> list[T]:
    """Send ``report.sent`` messages while consuming them; returns first deliveries in arrival order.

    Every value is sent with its own ``send`` call (the queue coalesces them into batches); a credit
    semaphore keeps at most ``window`` messages in the queue at a time.
    """
    credits = anyio.Semaphore(window)
    first: dict[Hashable, T] = {}
    started = time.perf_counter()

    async def produce() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(report.sent):
                await credits.acquire()
                value, group = make(i)
                tg.start_soon(partial(queue.send, value, group_id=group))
        report.send_seconds = time.perf_counter() - started

    def arrived(message: Message[T], acks: anyio.abc.TaskGroup) -> None:
        body = message.body
        acks.start_soon(message.ack)  # acks run concurrently: coalesced into DeleteMessageBatch calls
        report.received += 1
        if key(body) not in first:
            first[key(body)] = body
            credits.release()

    async def consume() -> None:
        with anyio.fail_after(_PHASE_TIMEOUT):
            if queue.fifo:  # a batch's acks done before the next receive: FIFO holds back their groups
                while len(first) < report.sent:
                    batch = await queue.receive(10, wait=1)
                    async with anyio.create_task_group() as acks:
                        for message in batch:
                            arrived(message, acks)
                return
            async with queue.consume(prefetch=10, wait=1) as messages, anyio.create_task_group() as acks:
                async for message in messages:
                    arrived(message, acks)
                    if len(first) == report.sent:
                        break

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        tg.start_soon(consume)
    report.total_seconds = time.perf_counter() - started
    report.distinct = len(first)
    report.duplicates = report.received - report.distinct
    report.missing = report.sent - report.distinct
    return list(first.values())


async def _standard_phase(queue: Queue[Order], count: int) -> PhaseReport:
    report = PhaseReport("standard", sent=count)

    def make(i: int) -> tuple[Order, None]:
        return Order(order_id=i, customer=f"c{i % 7}", amount_cents=100 + i), None

    received = await _phase(report, queue, make, lambda order: order.order_id, window=_WINDOW)
    if sorted(order.order_id for order in received) != list(range(count)):
        report.problems.append("received ids differ from the sent ids")
    return report


async def _fifo_phase(queue: Queue[Booking], count: int, groups: int) -> PhaseReport:
    """Groups are interleaved: message i goes to group ``i % groups`` with the next seq of that group."""
    report = PhaseReport("fifo", sent=count)

    def make(i: int) -> tuple[Booking, str]:
        customer = f"customer-{i % groups}"
        return Booking(customer=customer, seq=i // groups, seat=f"{i % 30}{'ABCDEF'[i % 6]}"), customer

    received = await _phase(report, queue, make, lambda b: (b.customer, b.seq), window=_WINDOW)
    per_group: dict[str, list[int]] = defaultdict(list)
    for booking in received:
        per_group[booking.customer].append(booking.seq)
    report.problems.extend(
        f"{customer} out of order" for customer, seqs in sorted(per_group.items()) if seqs != sorted(seqs)
    )
    return report


async def _offload_phase(queue: Queue[Scan], log: Callable[[str], None]) -> PhaseReport:
    """One message twice SQS's 1 MiB limit: sent, received and acked through an S3 pointer."""
    report = PhaseReport("offload", sent=1)
    scan = Scan(name="page-1", pixels=bytes(range(256)) * 8_192)  # 2 MiB
    started = time.perf_counter()
    await queue.send(scan)
    report.send_seconds = time.perf_counter() - started
    with anyio.fail_after(_PHASE_TIMEOUT):
        received = await queue.receive(1, wait=1)
        while not received:
            received = await queue.receive(1, wait=1)
    [message] = received
    report.received = report.distinct = 1
    if message.payload is None:
        report.problems.append("the message was not offloaded")
    elif message.body != scan:
        report.problems.append("the body read back differs from the body sent")
    else:
        where = f"s3://{message.payload.bucket}/{message.payload.key}"
        log(f"offloaded a {len(message.raw_body):,}-byte JSON body (2 MiB of pixels) through {where}")
    await message.ack()
    report.total_seconds = time.perf_counter() - started
    return report


class Image(msgspec.Struct, frozen=True):
    """A typed demo event for the fanout phase."""

    key: str
    kind: str


async def _fanout_phase(
    images: Topic[Image], queues: dict[str, tuple[Queue[Image], int]], events: int
) -> PhaseReport:
    """Publish ``events`` images once; each queue must receive exactly its expected share."""
    report = PhaseReport("fanout", sent=events)
    started = time.perf_counter()
    kinds = ["jpeg", "png", "gif"]
    async with anyio.create_task_group() as tg:
        for i in range(events):
            image = Image(f"img-{i}.{kinds[i % 3]}", kinds[i % 3])
            tg.start_soon(partial(images.publish, image, attributes={"kind": image.kind}))
    report.send_seconds = time.perf_counter() - started

    async def collect(name: str, queue: Queue[Image], expected: int) -> None:
        keys: set[str] = set()
        deliveries = 0
        with anyio.fail_after(_PHASE_TIMEOUT):
            async with anyio.create_task_group() as acks:
                while len(keys) < expected:
                    for message in await queue.receive(10, wait=2):
                        keys.add(message.body.key)
                        deliveries += 1
                        acks.start_soon(message.ack)
        report.received += deliveries
        report.distinct += len(keys)
        report.duplicates += deliveries - len(keys)
        if await queue.receive(10, wait=1):
            report.problems.append(f"{name} received more than its share")

    async with anyio.create_task_group() as tg:  # the three queues at once
        for name, (queue, expected) in queues.items():
            tg.start_soon(collect, name, queue, expected)
    report.total_seconds = time.perf_counter() - started
    report.missing = sum(expected for _, expected in queues.values()) - report.distinct
    return report


async def run_demo(
    app: App,
    *,
    messages: int,
    groups: int,
    log: Callable[[str], None],
    measured: str = "",
    tag: str = "",
) -> bool:
    """Run the phases on ``app``; returns whether every check passed. Resources are deleted afterwards.

    ``measured`` says what the timings measure (printed before them); ``tag`` ends each rate.
    """
    suffix = uuid.uuid4().hex[:8]
    dead_letters = app.queue(f"qfan-demo-orders-dlq-{suffix}", Order)
    orders = app.queue(
        f"qfan-demo-orders-{suffix}", Order, dead_letter=dead_letters, max_receives=3, visibility_timeout=30
    )
    bookings = app.queue(f"qfan-demo-bookings-{suffix}.fifo", Booking, content_based_dedup=True)
    scans = app.queue(f"qfan-demo-scans-{suffix}", Scan, offload=Offload(f"qfan-demo-{suffix}"))
    images = app.topic(f"qfan-demo-images-{suffix}", Image)
    fanout = {
        "thumbnails": app.queue(f"qfan-demo-thumbnails-{suffix}", Image),
        "faces": app.queue(f"qfan-demo-faces-{suffix}", Image),
        "metadata": app.queue(f"qfan-demo-metadata-{suffix}", Image),
    }
    app.subscribe(images, fanout["thumbnails"], filter_policy={"kind": ["jpeg", "png"]})
    app.subscribe(images, fanout["faces"])
    app.subscribe(images, fanout["metadata"], raw=False)
    events = max(3, messages // 10)
    shares = {"thumbnails": sum(1 for i in range(events) if i % 3 != 2), "faces": events, "metadata": events}
    async with app:
        log(
            f"declared {orders.name} (dead letters: {dead_letters.name}), {bookings.name}, "
            f"and {scans.name} (large bodies to S3 bucket qfan-demo-{suffix})"
        )
        log(f"declared topic {images.name} fanning out to {', '.join(q.name for q in fanout.values())}")
        if measured:
            log(f"the timings below measure {measured}")
        try:
            standard = await _standard_phase(orders, messages)
            log(standard.line(tag))
            fifo = await _fifo_phase(bookings, messages, groups)
            log(fifo.line(tag))
            offload = await _offload_phase(scans, log)
            log(offload.line(tag))
            leftovers = await dead_letters.receive(10, wait=0)
            if leftovers:
                standard.problems.append(f"{len(leftovers)} messages dead-lettered")
            fanned = await _fanout_phase(images, {n: (q, shares[n]) for n, q in fanout.items()}, events)
            log(fanned.line(tag))
            log(f"  each of {events} images published once: " + ", ".join(f"{n} {shares[n]}" for n in fanout))
        finally:
            with anyio.CancelScope(shield=True):
                await images.delete()
                demo_queues: list[Queue[Any]] = [orders, bookings, scans, dead_letters, *fanout.values()]
                for queue in demo_queues:
                    await queue.delete()
        log(f"deleted the demo queues; FIFO order held in each of {groups} groups: {fifo.ok}")
    return standard.ok and fifo.ok and offload.ok and fanned.ok
