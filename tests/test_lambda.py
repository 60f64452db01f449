"""app.lambda_handler(): events built the way Lambda's event sources build them, from messages really
received from the emulator, handed to the handler from a plain thread with a fake context."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .support.aws import object_exists, raw_client
from .support.lambda_events import FakeContext, receive_raw, sns_event, sqs_event

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)

NOW = qfan.Backoff(initial=0, maximum=1, jitter=0)


class Order(msgspec.Struct):
    id: int
    item: str


async def invoke(handler: Callable[..., Any], event: dict[str, Any], context: Any = None) -> Any:
    """As Lambda's runtime does: a plain (non-event-loop) thread calls the handler."""
    return await anyio.to_thread.run_sync(handler, event, context or FakeContext())


async def invoke_once(app: qfan.App, event: dict[str, Any], context: Any = None, **options: Any) -> Any:
    """A fresh handler (a cold start), one invocation, closed again."""
    handler = app.lambda_handler(**options)
    try:
        return await invoke(handler, event, context)
    finally:
        await anyio.to_thread.run_sync(handler.close)


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def ids_by(event: dict[str, Any], key: Callable[[Any], Any]) -> dict[Any, str]:
    return {key(msgspec.json.decode(r["body"])): r["messageId"] for r in event["Records"]}


async def test_typed_success_needs_no_connection(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name = unique_name()
    producer, app = make_app(), make_app()
    seen: list[tuple[Order, int, dict[str, Any]]] = []

    @app.worker(app.queue(name, Order))
    async def handle(order: Order, message: qfan.Message[Order]) -> None:
        seen.append((order, message.receive_count, message.attributes))

    orders = producer.queue(name, Order)
    async with producer:
        await orders.send_many(
            [Order(i, "pen") for i in range(3)], attributes={"kind": "a", "blob": b"\x00\xff"}
        )
        event = await sqs_event(endpoint_url, name, 3)
    handler = app.lambda_handler()
    try:
        response = await invoke(handler, event)
        assert not app.is_open  # every record handled: Lambda deletes them, nothing needed AWS
    finally:
        await anyio.to_thread.run_sync(handler.close)
    assert response == {"batchItemFailures": []}
    assert sorted(order.id for order, _, _ in seen) == [0, 1, 2]
    assert all(count == 1 and attrs == {"kind": "a", "blob": b"\x00\xff"} for _, count, attrs in seen)


async def test_one_failure_among_ten_is_the_only_one_reported(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name = unique_name()
    producer, app = make_app(), make_app()
    handled: list[int] = []

    @app.worker(app.queue(name, Order), backoff=NOW, concurrency=4)
    def handle(order: Order) -> None:  # a plain def: run in a thread
        if order.id == 7:
            raise ValueError("seven")
        handled.append(order.id)

    async with producer:
        await producer.queue(name, Order).send_many([Order(i, "pen") for i in range(10)])
        event = await sqs_event(endpoint_url, name, 10)
        response = await invoke_once(app, event)
        assert failed_ids(response) == {ids_by(event, lambda b: b["id"])[7]}
        assert sorted(handled) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
        [again], _ = await receive_raw(endpoint_url, name, 1)  # back at once: the worker's backoff is 0
    assert msgspec.json.decode(again["Body"])["id"] == 7
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


async def test_rejected_and_poison_are_dead_lettered_not_reported(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name, dlq = unique_name(), unique_name("dlq")
    producer, app = make_app(), make_app()
    handled: list[int] = []

    @app.worker(app.queue(name, Order, dead_letter=app.queue(dlq)))
    async def handle(order: Order) -> None:
        if order.id == 1:
            raise qfan.Reject("no pens for you")
        handled.append(order.id)

    dead = producer.queue(dlq)
    async with producer, raw_client("sqs", endpoint_url) as sqs:
        queue = producer.queue(name, Order, dead_letter=dead)
        await queue.send_many([Order(1, "pen"), Order(2, "ink")])
        await sqs.send_message(QueueUrl=(await queue.declare()).url, MessageBody="{not json")
        first = await sqs_event(endpoint_url, name, 3)
        handler = app.lambda_handler()
        try:
            response = await invoke(handler, first)
            connection = app.connection
            await queue.send(Order(1, "again"))  # a warm invocation reuses the open connection
            second = await sqs_event(endpoint_url, name, 1)
            again = await invoke(handler, second)
            assert app.connection is connection
        finally:
            await anyio.to_thread.run_sync(handler.close)
        assert response == again == {"batchItemFailures": []}
        copies = await dead.receive(10, wait=5)
        copies += await dead.receive(10, wait=1)
    assert handled == [2]
    reasons = sorted(str(c.attributes["dead-letter-reason"]) for c in copies)
    assert len(reasons) == 3
    assert reasons[0].startswith("poison message: ")
    assert reasons[1:] == ["rejected: no pens for you"] * 2
    assert not app.is_open


async def test_fifo_group_stops_at_its_first_failure(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name = unique_name(fifo=True)
    producer, app = make_app(), make_app()
    ran: list[str] = []

    @app.worker(app.queue(name, str, content_based_dedup=True), backoff=NOW)
    async def handle(body: str) -> None:
        ran.append(body)
        if body == "a2":
            raise RuntimeError("a2 fails")

    async with producer:
        queue = producer.queue(name, str, content_based_dedup=True)
        for body in ("a1", "b1", "a2", "b2", "a3"):
            await queue.send(body, group_id=body[0])
        event = await sqs_event(endpoint_url, name, 5)
    response = await invoke_once(app, event)
    ids = {r["body"]: r["messageId"] for r in event["Records"]}
    assert failed_ids(response) == {ids["a2"], ids["a3"]}
    assert sorted(ran) == ["a1", "a2", "b1", "b2"]  # a3 never ran
    assert ran.index("a1") < ran.index("a2")


async def test_sns_envelope_and_offloaded_body(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name, topic_name, bucket = unique_name(), unique_name("t"), f"qfan-test-{uuid.uuid4().hex[:12]}"
    policy = qfan.Offload(bucket, always=True)
    producer, app = make_app(), make_app()
    seen: list[tuple[Order, str | None]] = []

    @app.worker(app.queue(name, Order, offload=policy))
    async def handle(order: Order, message: qfan.Message[Order]) -> None:
        seen.append((order, message.sns.topic_arn if message.sns else None))

    topic = producer.topic(topic_name, Order)
    queue = producer.queue(name, Order, offload=policy)
    producer.subscribe(topic, queue, raw=False)
    async with producer, raw_client("s3", endpoint_url) as s3:
        await topic.publish(Order(1, "enveloped"))
        await queue.send(Order(2, "offloaded"))
        event = await sqs_event(endpoint_url, name, 2)
        [pointer] = [r["body"] for r in event["Records"] if "s3BucketName" in r["body"]]
        key = msgspec.json.decode(pointer)[1]["s3Key"]
        assert await object_exists(s3, bucket, key)
        response = await invoke_once(app, event)
        assert response == {"batchItemFailures": []}
        assert not await object_exists(s3, bucket, key)  # deleted after its message, once handled
        counts = await queue.attributes()
    # Only the enveloped message is left for Lambda to delete: the offloaded one was deleted here (message
    # first, then its payload).
    assert (
        int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 1
    )
    by_id = {order.id: (order, arn) for order, arn in seen}
    enveloped, arn = by_id[1]
    assert enveloped == Order(1, "enveloped")
    assert arn is not None
    assert arn.endswith(f":{topic_name}")
    assert by_id[2] == (Order(2, "offloaded"), None)


async def test_sns_event_routed_by_topic(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name, topic_name, dlq = unique_name(), unique_name("t"), unique_name("dlq")
    producer, app = make_app(), make_app()
    seen: list[tuple[Order, str | None]] = []

    @app.topic_handler(app.topic(topic_name, Order), dead_letter=app.queue(dlq))
    async def on_order(order: Order, message: qfan.Message[Order]) -> None:
        if order.id == 2:
            raise qfan.Reject("bad order")
        if order.id == 3:
            raise ValueError("try again")
        seen.append((order, message.sns.subject if message.sns else None))

    topic = producer.topic(topic_name, Order)
    producer.subscribe(topic, producer.queue(name), raw=False)  # to capture what SNS really delivers
    dead = producer.queue(dlq)
    async with producer:
        await dead.declare()
        for i in (1, 2, 3):
            await topic.publish(Order(i, "pen"), subject=f"order {i}")
        messages, _ = await receive_raw(endpoint_url, name, 3)
        events = {}
        for m in messages:
            published = msgspec.json.decode(msgspec.json.decode(m["Body"])["Message"])
            events[published["id"]] = sns_event(m["Body"])
        handler = app.lambda_handler()
        try:
            assert await invoke(handler, events[1]) is None
            assert await invoke(handler, events[2]) is None
            with pytest.raises(ValueError, match="try again"):  # fails the invocation: Lambda retries it
                await invoke(handler, events[3])
        finally:
            await anyio.to_thread.run_sync(handler.close)
        [copy] = await dead.receive(wait=5)
    assert seen == [(Order(1, "pen"), "order 1")]
    assert copy.attributes["dead-letter-reason"] == "rejected: bad order"
    assert copy.body == {"id": 2, "item": "pen"}


async def test_handlers_running_at_the_deadline_are_given_up_and_reported(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name = unique_name()
    producer, app = make_app(), make_app()
    finished: list[int] = []

    @app.worker(app.queue(name, Order), backoff=NOW)
    async def handle(order: Order) -> None:
        if order.id == 0:
            await anyio.sleep(120)
        finished.append(order.id)

    async with producer:
        await producer.queue(name, Order).send_many([Order(i, "pen") for i in range(3)])
        event = await sqs_event(endpoint_url, name, 3)
    response = await invoke_once(app, event, FakeContext(timeout=2.5), safety_margin=1.0)
    assert failed_ids(response) == {ids_by(event, lambda b: b["id"])[0]}
    assert sorted(finished) == [1, 2]


async def test_a_sync_handler_at_the_deadline_is_reported_without_waiting_for_its_thread(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name = unique_name()
    producer, app = make_app(), make_app()
    release, done = threading.Event(), threading.Event()

    @app.worker(app.queue(name, Order))
    def handle(order: Order) -> None:
        release.wait(60)  # a thread cannot be cancelled: it runs on until the test lets it go
        done.set()

    async with producer:
        await producer.queue(name, Order).send(Order(0, "pen"))
        event = await sqs_event(endpoint_url, name, 1)
    try:
        response = await invoke_once(app, event, FakeContext(timeout=2.0), safety_margin=1.0)
        assert not done.is_set()  # the response did not wait for the thread
    finally:
        release.set()
        await anyio.to_thread.run_sync(done.wait, 10)
    assert failed_ids(response) == {event["Records"][0]["messageId"]}


async def test_an_unknown_queue_is_a_clear_error(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name, other = unique_name(), unique_name()
    producer, app = make_app(), make_app()

    @app.worker(app.queue(other, Order))
    async def handle(order: Order) -> None: ...

    async with producer:
        await producer.queue(name, Order).send(Order(1, "pen"))
        event = await sqs_event(endpoint_url, name, 1)
    with pytest.raises(qfan.ConfigError, match=f"no worker is registered for queue .*{name}"):
        await invoke_once(app, event)


async def test_a_batch_handler_gets_lists_and_its_failures_are_reported(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name = unique_name()
    producer, app = make_app(), make_app()
    calls: list[list[int]] = []

    @app.worker(app.queue(name, Order), batch_size=4, backoff=NOW)
    async def handle(messages: list[qfan.Message[Order]]) -> list[qfan.Message[Order]]:
        calls.append(sorted(m.body.id for m in messages))
        return [m for m in messages if m.body.id == 2]

    async with producer:
        await producer.queue(name, Order).send_many([Order(i, "pen") for i in range(6)])
        event = await sqs_event(endpoint_url, name, 6)
    response = await invoke_once(app, event)
    assert failed_ids(response) == {ids_by(event, lambda b: b["id"])[2]}
    assert sorted(len(call) for call in calls) == [2, 4]
    assert sorted(i for call in calls for i in call) == list(range(6))
