"""Large payloads through S3: sizes around the threshold, batches, content types, attributes, failures."""

import json
import uuid
from collections.abc import Callable

import anyio
import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .support.aws import object_exists, raw_client
from .support.proxy import Proxy, server_error

LIMIT = 2048  # a small queue limit keeps the emulators fast; the logic is the same at 1 MiB
TEXT_ATTRIBUTE = len("content-type") + len("String") + len("text/plain")  # what qfan adds to a str body


class Scan(msgspec.Struct):
    name: str
    pixels: bytes


def bucket_name() -> str:
    return f"qfan-test-{uuid.uuid4().hex[:12]}"


def sqs_bodies(proxy: Proxy) -> list[str]:
    return [
        entry["MessageBody"]
        for call in proxy.calls("SendMessageBatch")
        for entry in json.loads(call.body)["Entries"]
    ]


@pytest.mark.parametrize("delta", [-1, 0, 1])
async def test_round_trip_around_the_auto_threshold(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], delta: int
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), str, max_message_size=LIMIT, offload=qfan.Offload(bucket))
    text = "é" * ((LIMIT - TEXT_ATTRIBUTE + delta) // 2) + "x" * ((LIMIT - TEXT_ATTRIBUTE + delta) % 2)
    assert len(text.encode()) + TEXT_ATTRIBUTE == LIMIT + delta  # counted in UTF-8 bytes, not characters
    async with app:
        proxy.clear()
        await queue.send(text)
        [message] = await queue.receive(wait=5)
        assert message.body == text
        assert message.raw_body == text
        await message.ack()
    [sent] = sqs_bodies(proxy)
    puts = proxy.s3_calls(bucket, "PUT")
    if delta <= 0:  # at or under the queue's MaximumMessageSize ("auto"): sent as it is
        assert sent == text
        assert message.payload is None
        assert puts == []
    else:
        assert message.payload is not None
        assert message.payload.bucket == bucket
        assert json.loads(sent) == [
            "software.amazon.payloadoffloading.PayloadS3Pointer",
            {"s3BucketName": bucket, "s3Key": message.payload.key},
        ]
        assert [p.path for p in puts] == [f"/{bucket}/{message.payload.key}"]
        assert len(proxy.s3_calls(bucket, "DELETE")) == 1  # acked: the payload went too


async def test_five_mebibytes_round_trip_with_attributes_and_content_type(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    app = make_app()
    queue = app.queue(unique_name(), Scan, offload=qfan.Offload(bucket, prefix="scans/"))
    scan = Scan("big", bytes(range(256)) * (5 * 1024 * 4))  # 5 MiB of pixels
    async with app:
        await queue.send(scan, attributes={"kind": "tiff", "page": 3})
        [message] = await queue.receive(wait=5)
        assert message.body == scan
        assert message.attributes == {"kind": "tiff", "page": 3}  # no marker among them
        assert message.content_type == "application/json"
        assert message.payload is not None
        assert message.payload.key.startswith("scans/")
        async with raw_client("s3", endpoint_url) as s3:
            assert await object_exists(s3, bucket, message.payload.key)
            await message.ack()
            assert not await object_exists(s3, bucket, message.payload.key)
        assert await queue.receive(wait=0) == []


@pytest.mark.parametrize("how", ["send_many", "concurrent send"])
async def test_a_batch_over_the_limit_is_split_while_each_entry_fits(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], how: str
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), str, max_message_size=LIMIT, offload=qfan.Offload(bucket))
    sizes = [100, 1900, 700, 5000, 1500, 20, 1990, 3000, 400, 1200]  # total far over LIMIT
    values = [chr(ord("a") + i) * size for i, size in enumerate(sizes)]
    ids = [""] * len(values)

    async def send(index: int) -> None:
        ids[index] = await queue.send(values[index])

    async with app:
        proxy.clear()
        if how == "send_many":
            ids = await queue.send_many(values)
        else:  # coalesced into batches by size, after offloading
            async with anyio.create_task_group() as tg:
                for index in range(len(values)):
                    tg.start_soon(send, index)
        received = {}
        while len(received) < len(values):
            batch = await queue.receive(wait=2)
            assert batch, "messages missing"
            for message in batch:
                received[message.message_id] = message.body
                await message.ack()
    assert [received[i] for i in ids] == values
    batches = proxy.calls("SendMessageBatch")
    assert len(batches) > 1
    for call in batches:
        entries = json.loads(call.body)["Entries"]
        total = sum(
            len(e["MessageBody"].encode())
            + sum(
                len(n) + len(a["DataType"]) + len(a.get("StringValue", "").encode())
                for n, a in e["MessageAttributes"].items()
            )
            for e in entries
        )
        assert total <= LIMIT
    assert len(proxy.s3_calls(bucket, "PUT")) == 2  # only the 5000 and 3000 byte values went to S3


async def test_always_offload_with_legacy_marker_and_encryption(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    bucket = bucket_name()
    policy = qfan.Offload(bucket, always=True, marker="SQSLargePayloadSize", encryption="AES256")
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), offload=policy)
    async with app:
        proxy.clear()
        await queue.send(b"\x00tiny\xff")
        [message] = await queue.receive(wait=5)
        assert message.body == b"\x00tiny\xff"
        assert message.content_type == "application/octet-stream;base64"
        await message.ack()
    [entry] = json.loads(proxy.calls("SendMessageBatch")[0].body)["Entries"]
    assert entry["MessageAttributes"] == {
        "SQSLargePayloadSize": {"DataType": "Number", "StringValue": "8"}
    }  # base64 of 6 bytes
    [put] = proxy.s3_calls(bucket, "PUT")
    assert put.header("x-amz-server-side-encryption") == "AES256"
    assert put.header("Content-Type") == "application/octet-stream;base64"


async def test_offloaded_messages_keep_nine_user_attributes_and_no_more(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket_name(), always=True))
    nine = {f"a{i}": i for i in range(9)}
    async with app:
        await queue.send("body", attributes=nine)
        [message] = await queue.receive(wait=5)
        assert message.attributes == nine
        assert message.body == "body"
        await message.ack()
        with pytest.raises(qfan.ConfigError, match="at most 9"):
            await queue.send("body", attributes={**nine, "a9": 9})
        with pytest.raises(qfan.ConfigError, match="reserved"):
            await queue.send("body", attributes={"ExtendedPayloadSize": 4})


async def test_failed_upload_fails_the_send_and_enqueues_nothing(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket, always=True))
    async with app:
        proxy.inject("s3:PUT", server_error(500), times=100)
        with pytest.raises(qfan.ServiceUnavailable) as caught:
            await queue.send("lost?")
        assert caught.value.operation == "PutObject"
        with pytest.raises(qfan.ServiceUnavailable):
            await queue.send_many(["a", "b"])
        proxy.clear()
        assert await queue.receive(wait=0) == []
    assert proxy.calls("SendMessageBatch") == []


async def test_a_body_over_max_payload_size_is_not_sent(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    bucket = bucket_name()
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket, always=True, max_payload_size=100))
    async with app:
        proxy.clear()
        with pytest.raises(qfan.MessageTooLarge, match="max_payload_size") as caught:
            await queue.send("z" * 101)
    assert caught.value.limit == 100
    assert proxy.s3_calls(bucket, "PUT") == []
    assert proxy.calls("SendMessageBatch") == []


async def test_bucket_is_declared_with_an_expiry_rule_beside_other_rules(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    theirs = {"ID": "theirs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 9}}
    async with raw_client("s3", endpoint_url) as s3:
        await s3.create_bucket(Bucket=bucket)
        await s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [theirs]})
    policy = qfan.Offload(bucket, prefix="orders/", expire_with_retention=True)
    app = make_app()
    dead_letters = app.queue(unique_name(), retention=86_400)
    app.queue(unique_name(), retention=2 * 86_400 + 1, dead_letter=dead_letters, offload=policy)
    async with app:
        pass
    async with app:  # declaring again changes nothing
        pass
    async with raw_client("s3", endpoint_url) as s3:
        rules = (await s3.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"]
    [kept] = [rule for rule in rules if rule["ID"] == "theirs"]
    assert kept["Expiration"] == {"Days": 9}
    [rule] = [rule for rule in rules if rule["ID"] != "theirs"]
    assert rule["ID"] == "qfan-expire:orders/"
    assert rule["Filter"] == {"Prefix": "orders/"}
    assert rule["Expiration"] == {"Days": 4}  # 2 days + 1 s here, 1 day in the dead-letter queue
    assert rule["Status"] == "Enabled"


async def test_content_based_deduplication_still_works_on_offloaded_fifo_messages(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    queue = app.queue(
        unique_name(fifo=True), content_based_dedup=True, offload=qfan.Offload(bucket_name(), always=True)
    )
    async with app:
        await queue.send("same big body", group_id="g")
        await queue.send("same big body", group_id="g")
        await queue.send("another body", group_id="g")
        received = [m.body for m in await queue.receive(wait=2)]
    assert received == ["same big body", "another body"]


async def test_an_offloading_queue_or_topic_registered_after_opening_works(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    app = make_app()  # nothing that needs S3 or SNS yet: neither is opened on entering
    async with app, raw_client("s3", endpoint_url) as s3:
        bucket = bucket_name()
        late = app.queue(unique_name(), str, offload=qfan.Offload(bucket, always=True))
        topic = app.topic(unique_name("late"), str)
        app.subscribe(topic, late)
        await app.declare()  # S3 (for the bucket) and SNS (topic, subscription) open now, on first need
        await late.send("offloaded")
        await topic.publish("published")
        received: list[str] = []
        with anyio.fail_after(30):
            while len(received) < 2:
                received += [m.body for m in await late.receive(wait=2)]
        received.sort()
        listed = await s3.list_objects_v2(Bucket=bucket)
    assert received == ["offloaded", "published"]
    assert listed.get("KeyCount", 0) >= 1


async def test_a_forwarded_offloaded_message_hands_its_payload_to_the_copy(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    policy = qfan.Offload(bucket, always=True)
    app = make_app()
    dead_letters = app.queue(unique_name(), offload=policy)
    queue = app.queue(unique_name(), offload=policy, dead_letter=dead_letters)
    async with app, raw_client("s3", endpoint_url) as s3:
        await queue.send({"big": "document"}, attributes={"kind": "report"})
        [message] = await queue.receive(wait=5)
        assert message.payload is not None
        await dead_letters.forward(message, attributes={"why": "test"})
        await message.ack()  # the copy points at the payload now: it must survive this ack
        assert await object_exists(s3, bucket, message.payload.key)
        [copy] = await dead_letters.receive(wait=5)
        assert copy.body == {"big": "document"}
        assert copy.attributes == {"kind": "report", "why": "test"}
        assert copy.payload == message.payload
        assert copy.wire_body == message.wire_body  # forwarded as the pointer, not the real body
        await copy.ack()
        assert not await object_exists(s3, bucket, message.payload.key)
