"""Offloaded payloads that cannot or must not be read, and the order of deletes on ack."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import qfan

from .helpers import AppFactory
from .support.aws import object_exists, raw_client
from .support.proxy import Proxy, server_error

POINTER = "software.amazon.payloadoffloading.PayloadS3Pointer"


def bucket_name() -> str:
    return f"qfan-test-{uuid.uuid4().hex[:12]}"


def pointer(bucket: str, key: str) -> str:
    return json.dumps([POINTER, {"s3BucketName": bucket, "s3Key": key}], separators=(",", ":"))


async def send_raw(sqs: Any, queue_url: str, body: str, size: int = 1) -> None:
    """Send as another producer would: the pointer body and the marker attribute, nothing of qfan's."""
    attributes = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(size)}}
    await sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)


async def receive_all(queue: qfan.Queue[Any], count: int) -> list[qfan.Message[Any]]:
    received: list[qfan.Message[Any]] = []
    while len(received) < count:
        batch = await queue.receive(wait=2)
        assert batch, f"only {len(received)} of {count} messages arrived"
        received.extend(batch)
    return received


async def test_a_foreign_bucket_is_refused_and_never_fetched(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    own, foreign = bucket_name(), bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), str, offload=qfan.Offload(own))
    async with app, raw_client("s3", endpoint_url) as s3, raw_client("sqs", endpoint_url) as sqs:
        await s3.create_bucket(Bucket=foreign)
        await s3.put_object(Bucket=foreign, Key="secret", Body=b"not for you")
        await send_raw(sqs, queue.info.url, pointer(foreign, "secret"))
        await queue.send("a plain message in the same receive")
        messages = await receive_all(queue, 2)
    [refused] = [m for m in messages if m.payload is not None]
    [plain] = [m for m in messages if m.payload is None]
    assert plain.body == "a plain message in the same receive"
    with pytest.raises(qfan.PayloadRefused) as caught:
        _ = refused.body
    assert (caught.value.bucket, caught.value.key) == (foreign, "secret")
    assert refused.raw_body == pointer(foreign, "secret")
    assert proxy.s3_calls(foreign) == []  # not a single request touched the foreign bucket


async def test_a_queue_without_offload_policy_refuses_pointers(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), str)
    async with app, raw_client("s3", endpoint_url) as s3, raw_client("sqs", endpoint_url) as sqs:
        await s3.create_bucket(Bucket=bucket)
        await s3.put_object(Bucket=bucket, Key="k", Body=b"payload")
        await send_raw(sqs, queue.info.url, pointer(bucket, "k"))
        [message] = await queue.receive(wait=5)
    with pytest.raises(qfan.PayloadRefused, match="no offload policy"):
        _ = message.body
    assert proxy.s3_calls(bucket) == []


async def test_missing_oversize_and_malformed_payloads_are_typed_errors(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    app = make_app()
    queue = app.queue(unique_name(), str, offload=qfan.Offload(bucket, max_payload_size=1000))
    bodies = {
        "missing": pointer(bucket, "gone"),
        "oversize": pointer(bucket, "big"),
        "not json": "this is not a pointer",
        "unknown class": json.dumps(["com.example.Pointer", {"s3BucketName": bucket, "s3Key": "big"}]),
        "no key": json.dumps([POINTER, {"s3BucketName": bucket}]),
        "fine": pointer(bucket, "small"),
    }
    async with app, raw_client("s3", endpoint_url) as s3, raw_client("sqs", endpoint_url) as sqs:
        await s3.put_object(Bucket=bucket, Key="big", Body=b"b" * 1001)
        await s3.put_object(Bucket=bucket, Key="small", Body=b"\xc3\xa9" * 500)  # exactly 1000 bytes
        for body in bodies.values():
            await send_raw(sqs, queue.info.url, body)
        messages = await receive_all(queue, len(bodies))
    by_body = {m.raw_body: m for m in messages}
    assert by_body["é" * 500].payload == qfan.PayloadLocation(bucket, "small")
    errors: dict[str, type[qfan.PayloadError]] = {
        "missing": qfan.PayloadMissing,
        "oversize": qfan.PayloadTooLarge,
        "not json": qfan.PayloadPointerInvalid,
        "unknown class": qfan.PayloadPointerInvalid,
        "no key": qfan.PayloadPointerInvalid,
    }
    for name, error in errors.items():
        with pytest.raises(error) as caught:
            _ = by_body[bodies[name]].body
        assert caught.value.raw_body == bodies[name], name
    with pytest.raises(qfan.PayloadTooLarge) as too_large:
        _ = by_body[bodies["oversize"]].body
    assert (too_large.value.size, too_large.value.limit) == (1001, 1000)


async def test_a_failed_sqs_delete_leaves_the_payload_in_place(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket, always=True))
    async with app, raw_client("s3", endpoint_url) as s3:
        await queue.send("keep me")
        [message] = await queue.receive(wait=5, visibility=0)
        assert message.payload is not None
        proxy.inject("DeleteMessageBatch", server_error(500), times=100)
        with pytest.raises(qfan.ServiceUnavailable):
            await message.ack()
        assert not message.settled
        assert await object_exists(s3, bucket, message.payload.key)
        assert proxy.s3_calls(bucket, "DELETE") == []
        proxy.clear()
        [again] = await queue.receive(wait=5)  # redelivered, and still readable
        assert again.body == "keep me"
        await again.ack()
        assert not await object_exists(s3, bucket, message.payload.key)


async def test_a_failed_s3_delete_still_deletes_the_message_and_is_counted(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket, always=True))
    async with app, raw_client("s3", endpoint_url) as s3:
        await queue.send("done")
        [message] = await queue.receive(wait=5, visibility=0)  # visible again at once unless deleted
        assert message.payload is not None
        proxy.inject("s3:DELETE", server_error(500), times=100)
        await message.ack()
        assert message.settled
        assert queue.payload_delete_failures == 1
        assert await object_exists(s3, bucket, message.payload.key)  # left for the lifecycle rule
        assert await queue.receive(wait=1) == []
