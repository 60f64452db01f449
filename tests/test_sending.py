"""Sending: typed bodies and attributes, coalesced batches, per-entry errors, size checks, retries."""

import json
from collections.abc import Callable

import anyio
import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .support.proxy import Proxy, fail_entry, reset_before, server_error, throttle


class Photo(msgspec.Struct):
    key: str
    size: int


def entries_of(body: bytes) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(body)["Entries"]
    return entries


async def test_send_round_trips_typed_body_and_attributes(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    photos = app.queue(unique_name(), Photo)
    async with app:
        message_id = await photos.send(
            Photo("a.jpg", 5_000),
            attributes={"kind": "jpeg", "width": 640, "ratio": 1.5, "thumb": b"\x00\x01"},
        )
        [message] = await photos.receive(wait=5)
    assert message.message_id == message_id
    assert message.body == Photo("a.jpg", 5_000)
    assert message.content_type == "application/json"
    assert message.attributes == {"kind": "jpeg", "width": 640, "ratio": 1.5, "thumb": b"\x00\x01"}
    assert message.receive_count == 1
    assert message.sent_at is not None


async def test_concurrent_sends_are_coalesced_into_batches(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    results: dict[int, str] = {}

    async def send(i: int) -> None:
        results[i] = await queue.send({"n": i})

    async with app:
        proxy.clear()
        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(send, i)

    batches = proxy.calls("SendMessageBatch")
    assert proxy.calls("SendMessage") == []
    assert len(batches) <= 10
    assert all(len(entries_of(call.body)) <= 10 for call in batches)
    sent_bodies = sorted(json.loads(e["MessageBody"])["n"] for c in batches for e in entries_of(c.body))  # type: ignore[arg-type]
    assert sent_bodies == list(range(100))
    assert len(set(results.values())) == 100  # every caller got its own message id


async def test_batches_respect_the_queue_size_limit(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), max_message_size=4096)
    async with app:
        proxy.clear()
        await queue.send_many(["x" * 1500 for _ in range(6)])
    batches = proxy.calls("SendMessageBatch")
    assert [len(entries_of(c.body)) for c in batches] == [2, 2, 2]


async def test_send_many_keeps_order_and_returns_every_id(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(fifo=True), content_based_dedup=True)
    async with app:
        proxy.clear()
        ids = await queue.send_many([f"m{i}" for i in range(25)], group_id="g")
        received = []
        while len(received) < 25:
            batch = await queue.receive(wait=2)
            assert batch, "messages missing"
            for message in batch:
                received.append((message.message_id, message.body))
                await message.ack()
    assert len(ids) == 25
    assert [len(entries_of(c.body)) for c in proxy.calls("SendMessageBatch")] == [10, 10, 5]
    assert received == [(ids[i], f"m{i}") for i in range(25)]


async def test_one_failing_entry_fails_only_its_caller(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    outcomes: dict[int, str | qfan.QfanError] = {}

    async def send(i: int) -> None:
        try:
            outcomes[i] = await queue.send(f"m{i}")
        except qfan.QfanError as exc:
            outcomes[i] = exc

    async with app:
        proxy.inject("SendMessageBatch", fail_entry("1", "InvalidParameterValue", sender_fault=True))
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(send, i)
                await anyio.lowlevel.checkpoint()  # keep submission order = entry ids
    failed = outcomes[1]
    assert isinstance(failed, qfan.InvalidParameter)
    assert failed.code == "InvalidParameterValue"
    assert failed.sender_fault is True
    assert isinstance(outcomes[0], str)
    assert isinstance(outcomes[2], str)
    assert len(proxy.calls("SendMessageBatch")) == 1  # a sender fault is not retried


async def test_a_transiently_failed_entry_is_retried_alone(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    async with app:
        proxy.inject("SendMessageBatch", fail_entry("2", "InternalError", sender_fault=False))
        ids = await queue.send_many([f"m{i}" for i in range(4)])
    assert len(ids) == 4
    first, retry = proxy.calls("SendMessageBatch")
    assert len(entries_of(first.body)) == 4
    assert [e["MessageBody"] for e in entries_of(retry.body)] == ["m2"]


async def test_oversize_message_is_refused_before_sending(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), max_message_size=1024)
    async with app:
        proxy.clear()
        with pytest.raises(qfan.MessageTooLarge) as caught:
            await queue.send("y" * 1000, attributes={"note": "z" * 30})
        with pytest.raises(qfan.MessageTooLarge):
            await queue.send_many(["ok", "y" * 2000])
    assert caught.value.limit == 1024
    assert caught.value.size == 1000 + len("note") + len("String") + 30 + len("content-type") + len(
        "String"
    ) + len("text/plain")
    assert proxy.calls("SendMessageBatch") == []


async def test_fifo_requirements_are_checked(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    fifo = app.queue(unique_name(fifo=True))
    standard = app.queue(unique_name())
    async with app:
        with pytest.raises(qfan.ConfigError, match="group_id"):
            await fifo.send("x", dedup_id="1")
        with pytest.raises(qfan.ConfigError, match="dedup_id"):
            await fifo.send("x", group_id="g")
        with pytest.raises(qfan.ConfigError, match="FIFO"):
            await standard.send("x", dedup_id="1")


async def test_throttling_is_retried(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    async with app:
        proxy.inject("SendMessageBatch", throttle(), times=2)
        proxy.inject("ReceiveMessage", server_error(500), times=1)
        message_id = await queue.send("survives")
        [message] = await queue.receive(wait=5)
    assert message.message_id == message_id
    sends = proxy.calls("SendMessageBatch")
    assert [call.fault is not None for call in sends] == [True, True, False]


async def test_connection_reset_is_retried(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name())
    async with app:
        proxy.inject("SendMessageBatch", reset_before(), times=1)
        await queue.send("after a reset")
        [message] = await queue.receive(wait=5)
    assert message.body == "after a reset"


async def test_retries_are_bounded_and_the_error_is_typed(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(
        endpoint_url=proxy.endpoint_url, retry=qfan.RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
    )
    queue = app.queue(unique_name())
    async with app:
        proxy.inject("SendMessageBatch", throttle(), times=10)
        with pytest.raises(qfan.Throttled) as caught:
            await queue.send("never")
    assert caught.value.operation == "SendMessageBatch"
    assert caught.value.request_id
    assert len(proxy.calls("SendMessageBatch")) == 3
