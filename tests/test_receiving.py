"""Receiving: FIFO order, deduplication, long polls, settling, bad bodies, bounded prefetch."""

from collections import defaultdict
from collections.abc import Callable
from functools import partial

import anyio
import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .support.proxy import Proxy, corrupt_body


class Step(msgspec.Struct):
    group: str
    seq: int


async def test_fifo_order_holds_per_group_with_groups_interleaved(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(fifo=True), Step, content_based_dedup=True)
    groups = ["a", "b", "c"]
    async with app:
        async with anyio.create_task_group() as tg:  # concurrent sends, interleaved groups
            for i in range(30):
                step = Step(groups[i % 3], i // 3)
                tg.start_soon(partial(queue.send, step, group_id=step.group))
                await anyio.lowlevel.checkpoint()
        seen: dict[str, list[int]] = defaultdict(list)
        async with queue.consume(prefetch=10, wait=2) as messages:
            async for message in messages:
                assert message.group_id == message.body.group
                seen[message.body.group].append(message.body.seq)
                await message.ack()
                if sum(map(len, seen.values())) == 30:
                    break
    assert dict(seen) == {group: list(range(10)) for group in groups}


async def test_content_based_and_explicit_deduplication(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    content = app.queue(unique_name(fifo=True), content_based_dedup=True)
    explicit = app.queue(unique_name(fifo=True))
    async with app:
        await content.send("same body", group_id="g")
        await content.send("same body", group_id="g")
        await explicit.send("first", group_id="g", dedup_id="order-1")
        await explicit.send("second", group_id="g", dedup_id="order-1")
        await explicit.send("third", group_id="g", dedup_id="order-2")
        from_content = await content.receive(wait=1)
        from_explicit = await explicit.receive(wait=1)
    assert [m.body for m in from_content] == ["same body"]
    assert [m.body for m in from_explicit] == ["first", "third"]
    assert [m.dedup_id for m in from_explicit] == ["order-1", "order-2"]


async def test_long_poll_wakes_up_when_a_message_arrives(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name())
    received: list[qfan.Message[object]] = []

    async def poll() -> None:
        received.extend(await queue.receive(wait=20))

    async with app, anyio.create_task_group() as tg:
        tg.start_soon(poll)
        await anyio.sleep(0.5)  # the poll is now waiting on the server
        await queue.send("wake up")
    # One receive call returned the message sent while it was waiting: the long poll woke up.
    assert [m.body for m in received] == ["wake up"]


async def test_nack_makes_the_message_visible_again(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), visibility_timeout=60)
    async with app:
        await queue.send("again")
        [first] = await queue.receive(wait=5)
        assert await queue.receive(wait=0) == []  # in flight
        await first.nack()
        [second] = await queue.receive(wait=5)
        assert second.message_id == first.message_id
        assert second.receive_count == 2
        await second.ack()
        await second.ack()  # a second ack does nothing
        assert second.settled
        assert await queue.receive(wait=0) == []


async def test_extend_keeps_the_message_invisible(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name())
    async with app:
        await queue.send("slow job")
        [message] = await queue.receive(wait=5, visibility=1)
        await message.extend(60)
        await anyio.sleep(2.5)  # well past the original 1 s visibility
        assert await queue.receive(wait=0) == []
        await message.ack()


async def test_expired_receipt_handle_is_reported(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    """A slow consumer whose message was redelivered and handled elsewhere learns its handle is dead."""
    app = make_app()
    queue = app.queue(unique_name())
    async with app:
        await queue.send("expires")
        [stale] = await queue.receive(wait=5, visibility=1)
        await anyio.sleep(2.5)
        [fresh] = await queue.receive(wait=5)  # redelivered after the visibility timeout
        assert fresh.message_id == stale.message_id
        await fresh.ack()
        with pytest.raises(qfan.ReceiptHandleInvalid) as caught:
            await stale.extend(30)
        assert caught.value.operation == "ChangeMessageVisibilityBatch"


async def test_garbage_receipt_handle_is_reported(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name())
    async with app:
        with pytest.raises(qfan.ReceiptHandleInvalid):
            await queue.change_visibility("not-a-receipt-handle", 10)


async def test_undecodable_body_is_a_typed_error_and_others_still_decode(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    name = unique_name()
    producer = make_app()
    raw = producer.queue(name)
    async with producer:
        await raw.send_many([{"group": "a", "seq": 1}, {"group": "a", "seq": "oops"}, "plain text"])

    consumer = make_app()
    typed = consumer.queue(name, Step)
    async with consumer:
        messages: list[qfan.Message[Step]] = []
        while len(messages) < 3:
            batch = await typed.receive(wait=2)
            assert batch
            messages.extend(batch)
    good = [m for m in messages if m.raw_body == '{"group":"a","seq":1}']
    assert good[0].body == Step("a", 1)
    for bad in (m for m in messages if m not in good):
        with pytest.raises(qfan.DecodeError) as caught:
            _ = bad.body
        assert caught.value.raw_body == bad.raw_body


async def test_consume_never_holds_more_than_its_prefetch(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), visibility_timeout=60)
    async with app:
        await queue.send_many([f"m{i}" for i in range(12)])
        async with queue.consume(prefetch=5, wait=1) as messages:
            first = await messages.__anext__()
            await first.ack()
            assert messages.buffered <= 4
            in_flight = await _not_visible(queue)
            assert 1 <= in_flight <= 4
        assert await _not_visible(queue) == 0  # leaving the block released the prefetched messages
        remaining: set[str] = set()
        while len(remaining) < 11:
            batch = await queue.receive(wait=2)
            assert batch
            remaining.update(str(m.body) for m in batch)
    assert f"{first.body}" not in remaining


async def _not_visible(queue: qfan.Queue[str]) -> int:
    return int((await queue.attributes())["ApproximateNumberOfMessagesNotVisible"])


async def test_a_body_altered_in_transit_is_detected(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    async with app:
        await queue.send_many(["one", "two"])
        proxy.inject("ReceiveMessage", corrupt_body())
        messages: list[qfan.Message[str]] = []
        while len(messages) < 2:
            messages.extend(await queue.receive(wait=2))
    corrupted = [m for m in messages if m.raw_body.endswith("(altered in transit)")]
    intact = [m for m in messages if m not in corrupted]
    assert len(corrupted) == 1
    with pytest.raises(qfan.ChecksumMismatch):
        _ = corrupted[0].body
    assert [m.body for m in intact] in (["one"], ["two"])
