"""Interoperability with AWS's extended clients: the Python client live, the Java client's literal format."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from sqs_extended_client import SQSExtendedClientSession

import qfan

from .helpers import AppFactory
from .support.aws import object_exists, raw_client

BIG = 300 * 1024  # over the extended clients' default threshold of 256 KiB
POINTER = "software.amazon.payloadoffloading.PayloadS3Pointer"


def bucket_name() -> str:
    return f"qfan-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def extended_client(endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """AWS's Python extended client (sync boto3), pointed at the emulator; call it in a worker thread."""
    # Its S3 client is made without arguments, so only the environment can point it at the emulator.
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)

    def make(bucket: str, *, legacy: bool = False) -> Any:
        sqs = SQSExtendedClientSession(region_name="us-east-1").client("sqs", endpoint_url=endpoint_url)
        sqs.large_payload_support = bucket
        sqs.use_legacy_attribute = legacy
        sqs.delete_payload_from_s3 = True
        return sqs

    return make


async def test_aws_python_client_reads_what_qfan_offloads(
    make_app: AppFactory,
    unique_name: Callable[..., str],
    endpoint_url: str,
    extended_client: Callable[..., Any],
) -> None:
    bucket = bucket_name()
    app = make_app()
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket, prefix="qfan/", threshold=BIG // 2))
    document = {"title": "report", "text": "ü" * BIG}
    async with app:
        await queue.send(document, attributes={"kind": "report"})
        client = await anyio.to_thread.run_sync(extended_client, bucket)
        response = await anyio.to_thread.run_sync(
            lambda: client.receive_message(
                QueueUrl=queue.info.url, MessageAttributeNames=["All"], WaitTimeSeconds=5
            )
        )
        [message] = response["Messages"]
        assert json.loads(message["Body"]) == document
        assert message["MessageAttributes"]["kind"]["StringValue"] == "report"
        assert "ExtendedPayloadSize" not in message["MessageAttributes"]  # it consumed the marker
        handle = message["ReceiptHandle"]
        assert handle.startswith(f"-..s3BucketName..-{bucket}-..s3BucketName..--..s3Key..-qfan/")
        # The client's own delete_message recovers the SQS handle with split('-')[-1], which breaks on
        # handles containing '-' (MiniStack's do); qfan takes the handle as the client hands it out.
        await queue.delete_receipt(handle)
        async with raw_client("s3", endpoint_url) as s3:
            listed = await s3.list_objects_v2(Bucket=bucket)
        assert listed.get("KeyCount", 0) == 0
        assert await queue.receive(wait=0) == []


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
async def test_qfan_reads_and_acks_what_aws_python_client_offloads(
    make_app: AppFactory,
    unique_name: Callable[..., str],
    endpoint_url: str,
    extended_client: Callable[..., Any],
    legacy: bool,
) -> None:
    bucket = bucket_name()
    app = make_app()
    queue = app.queue(unique_name(), dict, offload=qfan.Offload(bucket))
    document = {"rows": ["-" * 1000] * (BIG // 1000)}
    async with app:  # declares the bucket
        client = await anyio.to_thread.run_sync(lambda: extended_client(bucket, legacy=legacy))
        await anyio.to_thread.run_sync(
            lambda: client.send_message(
                QueueUrl=queue.info.url,
                MessageBody=json.dumps(document),
                MessageAttributes={"origin": {"DataType": "String", "StringValue": "boto3"}},
            )
        )
        [message] = await queue.receive(wait=5)
        assert message.body == document
        assert message.attributes == {"origin": "boto3"}
        assert message.content_type is None
        assert message.payload is not None
        async with raw_client("s3", endpoint_url) as s3:
            assert await object_exists(s3, bucket, message.payload.key)
            await message.ack()
            assert not await object_exists(s3, bucket, message.payload.key)
        assert await queue.receive(wait=0) == []


JAVA_VECTORS = {
    # Java SQS client 2.x default: compact pointer, legacy attribute name.
    "java": ("software.amazon.payloadoffloading.PayloadS3Pointer", "SQSLargePayloadSize", (",", ":")),
    # Java SQS client 1.x: the legacy pointer class.
    "java-legacy-class": ("com.amazon.sqs.javamessaging.MessageS3Pointer", "SQSLargePayloadSize", (",", ":")),
    # SNS Java client / Python client: current attribute; Python writes spaced JSON.
    "spaced": ("software.amazon.payloadoffloading.PayloadS3Pointer", "ExtendedPayloadSize", (", ", ": ")),
}


@pytest.mark.parametrize("vector", list(JAVA_VECTORS))
async def test_java_format_vectors_are_read_and_acked_through_java_receipt_handles(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str, vector: str
) -> None:
    class_name, marker, separators = JAVA_VECTORS[vector]
    bucket = bucket_name()
    key = f"java-{uuid.uuid4()}"  # keys with '-' in them, as the Java client makes
    original = "grüße -- from Java " * 20
    body = json.dumps([class_name, {"s3BucketName": bucket, "s3Key": key}], separators=separators)
    app = make_app()
    queue = app.queue(unique_name(), str, offload=qfan.Offload(bucket))
    async with app, raw_client("s3", endpoint_url) as s3, raw_client("sqs", endpoint_url) as sqs:
        await s3.put_object(Bucket=bucket, Key=key, Body=original.encode())
        size = str(len(original.encode()))
        await sqs.send_message(
            QueueUrl=queue.info.url,
            MessageBody=body,
            MessageAttributes={marker: {"DataType": "Number", "StringValue": size}},
        )
        [message] = await queue.receive(wait=5)
        assert message.body == original
        assert message.payload == qfan.PayloadLocation(bucket, key)
        # What the Java client hands its users instead of the SQS receipt handle:
        java_handle = (
            f"-..s3BucketName..-{bucket}-..s3BucketName..--..s3Key..-{key}-..s3Key..-{message.receipt_handle}"
        )
        await queue.change_visibility(java_handle, 0)
        [again] = await queue.receive(wait=5)
        assert again.body == original
        java_handle = java_handle.replace(message.receipt_handle, again.receipt_handle)
        await queue.delete_receipt(java_handle)
        assert not await object_exists(s3, bucket, key)
        assert await queue.receive(wait=0) == []


async def test_sns_extended_client_format_is_read_raw_and_enveloped(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    """AWS's SNS extended client's format (pointer body, ExtendedPayloadSize) is read raw and enveloped."""
    bucket = bucket_name()
    policy = qfan.Offload(bucket)
    app = make_app()
    topic = app.topic(unique_name("t"))
    raw = app.queue(unique_name("raw"), dict, offload=policy)
    wrapped = app.queue(unique_name("wrapped"), dict, offload=policy)
    app.subscribe(topic, raw)
    app.subscribe(topic, wrapped, raw=False)
    document = {"pages": ["x" * 100] * 3}
    text = json.dumps(document)
    async with app, raw_client("s3", endpoint_url) as s3, raw_client("sns", endpoint_url) as sns:
        await s3.put_object(Bucket=bucket, Key="from-sns", Body=text.encode())
        await sns.publish(
            TopicArn=topic.info.arn,
            Message=json.dumps([POINTER, {"s3BucketName": bucket, "s3Key": "from-sns"}]),
            MessageAttributes={
                "ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(len(text))},
                "origin": {"DataType": "String", "StringValue": "sns-java"},
            },
        )
        [from_raw] = await raw.receive(wait=5)
        [from_envelope] = await wrapped.receive(wait=5)
    for message in (from_raw, from_envelope):
        assert message.body == document
        assert message.attributes == {"origin": "sns-java"}
        assert message.payload == qfan.PayloadLocation(bucket, "from-sns")
    assert from_raw.sns is None
    assert from_envelope.sns is not None
    assert from_envelope.sns.topic_arn == topic.info.arn
