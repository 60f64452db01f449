"""The test infrastructure itself, against the real emulators, with plain aiobotocore (not qfan).

If these fail, every qfan test that uses the emulator or the proxy is suspect, so they check exactly what
the other tests rely on: real separate server processes, faithful forwarding, exact recording, and faults
that look to botocore like the real thing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from .support.emulators import Emulator
from .support.proxy import (
    FaultPlan,
    Proxy,
    corrupt_body,
    fail_entry,
    latency,
    reset_after,
    reset_before,
    server_error,
    slow_body,
    throttle,
)

SqsFactory = Callable[..., AbstractAsyncContextManager[Any]]


@pytest.fixture
def sqs() -> SqsFactory:
    """``sqs(endpoint_url, **retries)``: a raw aiobotocore SQS client; one attempt unless told otherwise."""

    def make(endpoint_url: str, **retries: Any) -> AbstractAsyncContextManager[Any]:
        config = AioConfig(retries=retries or {"total_max_attempts": 1})
        client: AbstractAsyncContextManager[Any] = get_session().create_client(
            "sqs", endpoint_url=endpoint_url, config=config
        )
        return client

    return make


@pytest.fixture
async def queue(sqs: SqsFactory, endpoint_url: str, unique_name: Callable[..., str]) -> str:
    """A fresh queue on the emulator (created directly, not through a proxy); its URL."""
    async with sqs(endpoint_url) as client:
        url: str = (await client.create_queue(QueueName=unique_name()))["QueueUrl"]
    return url


async def queued_bodies(sqs: SqsFactory, endpoint_url: str, queue_url: str) -> list[str]:
    """The bodies in the queue, asked of the emulator directly (the sends have completed: no need to wait)."""
    async with sqs(endpoint_url) as client:
        answer = await client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [m["Body"] for m in answer.get("Messages", [])]


def test_emulator_is_a_separate_healthy_process(emulator: Emulator) -> None:
    assert emulator.pid != os.getpid()
    os.kill(emulator.pid, 0)  # exists
    assert emulator.endpoint_url.startswith("http://127.0.0.1:")
    assert emulator.account_id == {"moto": "123456789012", "ministack": "000000000000"}[emulator.name]


def test_aws_env_is_hermetic() -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert not [name for name in os.environ if name.startswith(("AWS_PROFILE", "AWS_ENDPOINT_URL"))]


def test_unique_names(unique_name: Callable[..., str]) -> None:
    assert unique_name() != unique_name()
    assert unique_name("dlq").startswith("dlq-")
    assert unique_name(fifo=True).endswith(".fifo")


async def test_proxy_forwards_and_records(
    proxy: Proxy, sqs: SqsFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    async with sqs(proxy.endpoint_url) as client:
        url = (await client.create_queue(QueueName=unique_name()))["QueueUrl"]
        await client.send_message(QueueUrl=url, MessageBody="through the proxy")
        answer = await client.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        [message] = answer["Messages"]
        await client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        with pytest.raises(ClientError) as caught:  # upstream errors pass through untouched
            await client.get_queue_url(QueueName=unique_name("missing"))
    assert message["Body"] == "through the proxy"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [r.operation for r in proxy.requests] == [
        "CreateQueue",
        "SendMessage",
        "ReceiveMessage",
        "DeleteMessage",
        "GetQueueUrl",
    ]
    [send] = proxy.calls("SendMessage")
    assert (send.target, send.status, send.fault) == ("AmazonSQS.SendMessage", 200, None)
    assert b"through the proxy" in send.body
    assert proxy.calls("GetQueueUrl")[0].status == 400
    proxy.clear()
    assert proxy.requests == []
    assert await queued_bodies(sqs, endpoint_url, url) == []


async def test_throttle_is_a_botocore_throttling_error_once(
    proxy: Proxy, sqs: SqsFactory, queue: str
) -> None:
    proxy.inject("SendMessage", throttle())
    async with sqs(proxy.endpoint_url) as client:
        with pytest.raises(ClientError) as caught:
            await client.send_message(QueueUrl=queue, MessageBody="a")
        await client.send_message(QueueUrl=queue, MessageBody="b")  # the fault was used up
    error = caught.value.response
    assert error["Error"]["Code"] == "RequestThrottled"
    assert error["Error"]["Type"] == "Sender"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [(r.status, r.fault) for r in proxy.calls("SendMessage")] == [(400, "throttle"), (200, None)]
    assert proxy.pending() == {}


async def test_botocore_standard_retries_treat_the_throttle_as_retryable(
    proxy: Proxy, sqs: SqsFactory, queue: str
) -> None:
    proxy.inject("SendMessage", throttle())
    async with sqs(proxy.endpoint_url, mode="standard", total_max_attempts=2) as client:
        answer = await client.send_message(QueueUrl=queue, MessageBody="a")
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [r.fault for r in proxy.calls("SendMessage")] == ["throttle", None]


async def test_server_error(proxy: Proxy, sqs: SqsFactory, queue: str) -> None:
    proxy.inject("SendMessage", server_error(503))
    async with sqs(proxy.endpoint_url) as client:
        with pytest.raises(ClientError) as caught:
            await client.send_message(QueueUrl=queue, MessageBody="a")
    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert proxy.calls("SendMessage")[0].fault == "server_error"


@pytest.mark.parametrize(
    ("hard", "error"), [(False, ConnectionClosedError), (True, EndpointConnectionError)], ids=["close", "rst"]
)
async def test_reset_before_never_reaches_the_server(
    proxy: Proxy, sqs: SqsFactory, endpoint_url: str, queue: str, hard: bool, error: type[Exception]
) -> None:
    proxy.inject("SendMessage", reset_before(hard=hard))
    async with sqs(proxy.endpoint_url) as client:
        with pytest.raises(error):
            await client.send_message(QueueUrl=queue, MessageBody="lost")
    assert [(r.status, r.fault) for r in proxy.calls("SendMessage")] == [(None, "reset_before")]
    assert await queued_bodies(sqs, endpoint_url, queue) == []


@pytest.mark.parametrize(
    ("hard", "error"), [(False, ConnectionClosedError), (True, EndpointConnectionError)], ids=["close", "rst"]
)
async def test_reset_after_the_server_acted(
    proxy: Proxy, sqs: SqsFactory, endpoint_url: str, queue: str, hard: bool, error: type[Exception]
) -> None:
    proxy.inject("SendMessage", reset_after(hard=hard))
    async with sqs(proxy.endpoint_url) as client:
        with pytest.raises(error):
            await client.send_message(QueueUrl=queue, MessageBody="delivered anyway")
    assert [(r.status, r.fault) for r in proxy.calls("SendMessage")] == [(200, "reset_after")]
    assert await queued_bodies(sqs, endpoint_url, queue) == ["delivered anyway"]


async def test_fail_entry_and_corrupt_body(proxy: Proxy, sqs: SqsFactory, queue: str) -> None:
    proxy.inject("SendMessageBatch", fail_entry("b", "InternalError", sender_fault=False))
    proxy.inject("ReceiveMessage", corrupt_body())
    async with sqs(proxy.endpoint_url) as client:
        entries = [{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}]
        sent = await client.send_message_batch(QueueUrl=queue, Entries=entries)
        received = await client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    assert [ok["Id"] for ok in sent["Successful"]] == ["a"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in sent["Failed"]] == [("b", "InternalError", False)]
    [message] = received["Messages"]
    assert message["Body"].endswith(" (altered in transit)")


async def test_faults_are_per_operation_in_order_and_clear_disarms(
    proxy: Proxy, sqs: SqsFactory, queue: str
) -> None:
    proxy.inject("SendMessageBatch", server_error())
    proxy.inject("SendMessage", throttle())
    proxy.inject("SendMessage", server_error())
    assert proxy.pending() == {"SendMessageBatch": 1, "SendMessage": 2}
    async with sqs(proxy.endpoint_url) as client:
        for _ in range(2):
            with pytest.raises(ClientError):
                await client.send_message(QueueUrl=queue, MessageBody="a")
        await client.get_queue_attributes(QueueUrl=queue)
        proxy.clear()
        await client.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "x"}])
    assert proxy.pending() == {}
    assert [(r.operation, r.fault) for r in proxy.requests] == [("SendMessageBatch", None)]


async def test_concurrent_requests_are_all_forwarded_and_recorded(
    proxy: Proxy, sqs: SqsFactory, endpoint_url: str, queue: str
) -> None:
    proxy.inject("SendMessage", server_error(), times=3)
    async with sqs(proxy.endpoint_url) as client:
        sends = [client.send_message(QueueUrl=queue, MessageBody=str(i)) for i in range(30)]
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
    assert sum(isinstance(o, ClientError) for o in outcomes) == 3
    assert sorted(r.status for r in proxy.calls("SendMessage")) == [200] * 27 + [500] * 3
    async with sqs(endpoint_url) as client:
        attributes = await client.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "27"


async def test_latency_and_slow_bodies_still_deliver_the_servers_answer(
    proxy: Proxy, sqs: SqsFactory, queue: str
) -> None:
    proxy.inject("SendMessage", latency(0.05))
    proxy.inject("ReceiveMessage", slow_body(0.01))
    async with sqs(proxy.endpoint_url) as client:
        await client.send_message(QueueUrl=queue, MessageBody="slowly")
        received = await client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    assert [m["Body"] for m in received["Messages"]] == ["slowly"]
    assert proxy.injected == {("SendMessage", "latency"): 1, ("ReceiveMessage", "slow_body"): 1}


def test_a_fault_plan_is_deterministic_by_seed_and_honours_rate_and_mix() -> None:
    def decisions(seed: int) -> list[str | None]:
        plan = FaultPlan(rate=0.3, seed=seed)
        return [None if (fault := plan.decide("SendMessage")) is None else fault.kind for _ in range(2000)]

    first = decisions(7)
    assert first == decisions(7)
    assert first != decisions(8)
    faulted = [kind for kind in first if kind is not None]
    assert 450 < len(faulted) < 750
    assert set(faulted) == {"server_error", "throttle", "reset_before", "reset_after", "latency", "slow_body"}
    only_throttle = FaultPlan(rate=1, mix={"throttle": 1}, only=frozenset({"s3:GET"}))
    assert only_throttle.decide("SendMessage") is None
    assert only_throttle.decide("s3:GET") == throttle()


async def test_planned_faults_look_like_aws_to_botocore_on_sqs_and_sns(
    proxy: Proxy, sqs: SqsFactory, queue: str
) -> None:
    proxy.plan(FaultPlan(rate=1, mix={"throttle": 1}))
    async with sqs(proxy.endpoint_url) as client:
        with pytest.raises(ClientError) as sqs_error:
            await client.send_message(QueueUrl=queue, MessageBody="a")
    config = AioConfig(retries={"total_max_attempts": 1})
    async with get_session().create_client("sns", endpoint_url=proxy.endpoint_url, config=config) as sns:
        with pytest.raises(ClientError) as sns_error:
            await sns.publish(TopicArn="arn:aws:sns:us-east-1:000000000000:t", Message="m")
    proxy.plan(None)
    assert sqs_error.value.response["Error"]["Code"] == "RequestThrottled"
    assert sns_error.value.response["Error"]["Code"] == "Throttling"
    assert proxy.injected == {("SendMessage", "throttle"): 1, ("sns:Publish", "throttle"): 1}
