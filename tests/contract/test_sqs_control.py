"""SQS control planes: declaring, inspecting, tagging, purging and listing queues."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import qfan
from qfan._transport import SendEntry

from .conftest import Planes


async def test_create_queue_is_idempotent_and_refuses_other_attributes(
    planes: Planes, unique_name: Callable[..., str]
) -> None:
    name = unique_name()
    url = await planes.queue(name, VisibilityTimeout="5")
    assert url.endswith(f"/{name}")
    assert await planes.control.create_queue(name, {"VisibilityTimeout": "5"}, {}) == url
    assert await planes.control.get_queue_url(name) == url
    with pytest.raises(qfan.QueueNameExists):
        await planes.control.create_queue(name, {"VisibilityTimeout": "6"}, {})


async def test_queue_attributes(planes: Planes, unique_name: Callable[..., str]) -> None:
    name = unique_name()
    url = await planes.queue(name, DelaySeconds="2")
    attributes = await planes.control.get_queue_attributes(url)
    assert attributes["QueueArn"].startswith("arn:aws:sqs:us-east-1:")
    assert attributes["QueueArn"].endswith(f":{name}")
    expected = {
        "DelaySeconds": "2",
        "VisibilityTimeout": "30",
        "MessageRetentionPeriod": "345600",
        "ReceiveMessageWaitTimeSeconds": "0",
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
    assert {k: attributes.get(k) for k in expected} == expected
    await planes.control.set_queue_attributes(url, {"VisibilityTimeout": "45"})
    assert (await planes.control.get_queue_attributes(url))["VisibilityTimeout"] == "45"


async def test_default_maximum_message_size(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("ministack", "new queues get the old 256 KiB MaximumMessageSize, not 1 MiB")
    url = await planes.queue(unique_name())
    assert (await planes.control.get_queue_attributes(url))["MaximumMessageSize"] == "1048576"


async def test_fifo_queue_attributes(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true", ContentBasedDeduplication="true")
    attributes = await planes.control.get_queue_attributes(url)
    assert (attributes["FifoQueue"], attributes["ContentBasedDeduplication"]) == ("true", "true")
    with pytest.raises(qfan.InvalidParameter):
        await planes.control.create_queue(unique_name(), {"FifoQueue": "true"}, {})  # no .fifo suffix


async def test_tags(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.control.create_queue(unique_name(), {}, {"team": "a"})
    planes.created.append(url)
    await planes.control.tag_queue(url, {"env": "test"})
    assert await planes.control.list_queue_tags(url) == {"team": "a", "env": "test"}


async def test_purge_and_list(planes: Planes, unique_name: Callable[..., str]) -> None:
    prefix = unique_name("list")
    first = await planes.queue(f"{prefix}-1")
    second = await planes.queue(f"{prefix}-2")
    assert sorted(await planes.control.list_queues(prefix)) == [first, second]
    await planes.data.send_batch(first, [SendEntry("a", "x"), SendEntry("b", "y")])
    await planes.control.purge_queue(first)
    assert await planes.data.receive(first, max_messages=10, wait_seconds=1, visibility_timeout=None) == []
