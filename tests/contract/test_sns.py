"""SNS planes: topics, SQS subscriptions, raw and enveloped delivery, and filter policies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import qfan
from qfan._transport import PublishEntry, WireAttribute
from qfan._wire._envelope import unwrap

from .conftest import Planes

ATTRIBUTES = {
    "kind": WireAttribute("String", string_value="jpeg"),
    "size": WireAttribute("Number", string_value="42"),
}


async def fanout(
    planes: Planes, unique_name: Callable[..., str], **subscription: str
) -> tuple[str, str, str]:
    """A topic with one subscribed queue: (topic ARN, queue URL, subscription ARN)."""
    topic = await planes.sns.create_topic(unique_name("t"), {}, {})
    url = await planes.queue(unique_name())
    arn = await planes.sns.subscribe(topic, await planes.arn(url), subscription)
    return topic, url, arn


async def test_topics(planes: Planes, unique_name: Callable[..., str]) -> None:
    name = unique_name("t")
    assert await planes.sns.find_topic(name) is None
    arn = await planes.sns.create_topic(name, {}, {})
    assert arn.endswith(f":{name}")
    assert await planes.sns.create_topic(name, {}, {}) == arn
    assert await planes.sns.find_topic(name) == arn
    assert (await planes.sns.get_topic_attributes(arn))["TopicArn"] == arn
    fifo = await planes.sns.create_topic(unique_name("t", fifo=True), {"FifoTopic": "true"}, {})
    assert (await planes.sns.get_topic_attributes(fifo))["FifoTopic"] == "true"
    await planes.sns.delete_topic(arn)
    await planes.sns.delete_topic(fifo)
    assert await planes.sns.find_topic(name) is None


async def test_subscriptions(planes: Planes, unique_name: Callable[..., str]) -> None:
    topic, url, arn = await fanout(planes, unique_name, RawMessageDelivery="true")
    queue_arn = await planes.arn(url)
    [listed] = await planes.sns.list_subscriptions(topic)
    assert (listed["SubscriptionArn"], listed["Protocol"], listed["Endpoint"]) == (arn, "sqs", queue_arn)
    assert await planes.sns.subscribe(topic, queue_arn, {"RawMessageDelivery": "true"}) == arn
    await planes.sns.set_subscription_attribute(arn, "FilterPolicy", '{"kind":["jpeg"]}')
    attributes = await planes.sns.get_subscription_attributes(arn)
    assert attributes["RawMessageDelivery"] == "true"
    assert json.loads(attributes["FilterPolicy"]) == {"kind": ["jpeg"]}
    await planes.sns.delete_topic(topic)


async def test_raw_delivery(planes: Planes, unique_name: Callable[..., str]) -> None:
    topic, url, _ = await fanout(planes, unique_name, RawMessageDelivery="true")
    result = await planes.sns.publish_batch(topic, [PublishEntry("1", "raw body", ATTRIBUTES)])
    assert result.failed == []
    [message] = await planes.collect(url, 1)
    assert message.body == "raw body"
    assert dict(message.attributes) == ATTRIBUTES
    await planes.sns.delete_topic(topic)


async def test_enveloped_delivery(planes: Planes, unique_name: Callable[..., str]) -> None:
    topic, url, _ = await fanout(planes, unique_name)
    attributes = dict(ATTRIBUTES)
    if planes.emulator != "ministack":  # MiniStack empties binary values in envelopes
        attributes["blob"] = WireAttribute("Binary", binary_value=b"\x00\xff")
    result = await planes.sns.publish_batch(
        topic, [PublishEntry("1", "hello", attributes, subject="greeting")]
    )
    [message] = await planes.collect(url, 1)
    assert dict(message.attributes) == {}  # SNS puts nothing beside the envelope
    unwrapped = unwrap(message.body)
    assert unwrapped is not None
    body, envelope_attributes, envelope = unwrapped
    assert (body, envelope_attributes) == ("hello", attributes)
    assert (envelope.topic_arn, envelope.subject) == (topic, "greeting")
    assert envelope.message_id == result.succeeded[0].message_id
    assert envelope.timestamp is not None
    await planes.sns.delete_topic(topic)


async def deliveries(
    planes: Planes, topic: str, url: str, entries: list[PublishEntry], expected: int
) -> list[str]:
    result = await planes.sns.publish_batch(topic, entries)
    assert result.failed == []
    received = await planes.collect(url, expected)
    # Nothing else arrives after the expected ones (the filtered ones were published first).
    received += await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=None)
    return sorted(m.body for m in received)


def published(*bodies_and_attributes: tuple[str, dict[str, str]]) -> list[PublishEntry]:
    return [
        PublishEntry(
            str(i), body, {k: WireAttribute("Number" if v.isdigit() else "String", v) for k, v in a.items()}
        )
        for i, (body, a) in enumerate(bodies_and_attributes)
    ]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"kind": ["jpeg", "png"]}, ["jpeg-big", "jpeg-small", "png"]),
        ({"kind": [{"prefix": "jp"}]}, ["jpeg-big", "jpeg-small"]),
        ({"kind": [{"anything-but": ["jpeg"]}]}, ["gif", "png"]),
        ({"size": [{"numeric": [">", 10, "<=", 1000]}]}, ["jpeg-big", "png"]),
        ({"kind": ["jpeg"], "size": [5]}, ["jpeg-small"]),
        ({"size": [{"exists": False}]}, ["gif"]),
    ],
    ids=["list", "prefix", "anything-but", "numeric-range", "and", "not-exists"],
)
async def test_filter_policy_on_attributes(
    planes: Planes, unique_name: Callable[..., str], policy: dict[str, Any], expected: list[str]
) -> None:
    if any(isinstance(c, dict) and "exists" in c for rule in policy.values() for c in rule):
        planes.deviates("ministack", 'it never matches {"exists": false}')
    topic, url, _ = await fanout(
        planes, unique_name, RawMessageDelivery="true", FilterPolicy=json.dumps(policy)
    )
    entries = published(
        ("gif", {"kind": "gif"}),
        ("jpeg-small", {"kind": "jpeg", "size": "5"}),
        ("jpeg-big", {"kind": "jpeg", "size": "500"}),
        ("png", {"kind": "png", "size": "50"}),
    )
    assert await deliveries(planes, topic, url, entries, len(expected)) == expected
    await planes.sns.delete_topic(topic)


async def test_filter_policy_on_body(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("ministack", "it ignores FilterPolicyScope=MessageBody and delivers everything")
    topic, url, _ = await fanout(
        planes,
        unique_name,
        RawMessageDelivery="true",
        FilterPolicy='{"order":{"kind":["jpeg"],"size":[{"numeric":[">",10]}]}}',
        FilterPolicyScope="MessageBody",
    )
    bodies = [
        json.dumps({"order": {"kind": "png", "size": 50}}),
        json.dumps({"order": {"kind": "jpeg", "size": 5}}),
        "not json at all",
        json.dumps({"order": {"kind": "jpeg", "size": 50}}),
    ]
    entries = [PublishEntry(str(i), body, {}) for i, body in enumerate(bodies)]
    assert await deliveries(planes, topic, url, entries, 1) == [bodies[-1]]
    await planes.sns.delete_topic(topic)


async def test_publish_batch_limits(planes: Planes, unique_name: Callable[..., str]) -> None:
    topic = await planes.sns.create_topic(unique_name("t"), {}, {})
    with pytest.raises(qfan.InvalidParameter):
        await planes.sns.publish_batch(topic, [PublishEntry(str(i), "x", {}) for i in range(11)])
    with pytest.raises(qfan.InvalidParameter):
        await planes.sns.publish_batch(topic, [PublishEntry("a", "x", {}), PublishEntry("a", "y", {})])
    await planes.sns.delete_topic(topic)


async def test_unknown_topic(planes: Planes, unique_name: Callable[..., str]) -> None:
    topic = await planes.sns.create_topic(unique_name("t"), {}, {})
    await planes.sns.delete_topic(topic)
    with pytest.raises(qfan.AwsError) as missing:
        await planes.sns.publish_batch(topic, [PublishEntry("a", "x", {})])
    # SNS says NotFound, which qfan's one mapping files under ObjectNotFound, on every plane alike.
    assert (type(missing.value), missing.value.code) == (qfan.ObjectNotFound, "NotFound")
