"""SQS planes, standard queues: what every implementation of ``SqsDataPlane``/``SqsControlPlane`` must do."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

import qfan
from qfan._transport import (
    ReceiptEntry,
    SendEntry,
    VisibilityEntry,
    WireAttribute,
    corruption_of,
    md5_of_attributes,
    md5_of_body,
)

from .conftest import Planes

ATTRIBUTES = {
    "kind": WireAttribute("String", string_value="naïve café 🚀"),
    "size": WireAttribute("Number", string_value="-12.5"),
    "blob": WireAttribute("Binary", binary_value=b"\x00\x01\xfe\xff"),
}


async def test_send_receive_delete_round_trip(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name())
    sent = await planes.data.send_batch(
        url, [SendEntry("a", "first — 東京", ATTRIBUTES), SendEntry("b", "second")]
    )
    assert sent.failed == []
    by_id = {s.id: s for s in sent.succeeded}
    assert by_id["a"].md5_of_body == md5_of_body("first — 東京")
    assert by_id["a"].md5_of_attributes == md5_of_attributes(ATTRIBUTES)
    assert by_id["b"].md5_of_attributes is None
    received = await planes.collect(url, 2)
    assert {m.message_id for m in received} == {s.message_id for s in sent.succeeded}
    for message in received:
        assert (
            corruption_of(message.body, message.md5_of_body, message.attributes, message.md5_of_attributes)
            is None
        )
        assert message.system_attributes["ApproximateReceiveCount"] == "1"
        for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"):
            assert message.system_attributes[name], name
    first = next(m for m in received if m.message_id == by_id["a"].message_id)
    assert first.body == "first — 東京"
    assert dict(first.attributes) == ATTRIBUTES
    deleted = await planes.data.delete_batch(
        url, [ReceiptEntry(m.message_id[:8], m.receipt_handle) for m in received]
    )
    assert deleted.failed == []
    assert await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=None) == []


async def test_visibility_timeout_hides_then_returns(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name())
    await planes.data.send_batch(url, [SendEntry("a", "hidden for a second")])
    [first] = await planes.collect(url, 1, visibility_timeout=1)
    assert await planes.data.receive(url, max_messages=10, wait_seconds=0, visibility_timeout=None) == []
    # The long poll outlasts the 1 s timeout: the message comes back, counted, with a new receipt handle.
    [again] = await planes.collect(url, 1, wait=6)
    assert again.message_id == first.message_id
    assert again.receipt_handle != first.receipt_handle
    assert again.system_attributes["ApproximateReceiveCount"] == "2"
    changed = await planes.data.change_visibility_batch(url, [VisibilityEntry("v", again.receipt_handle, 0)])
    assert changed.succeeded == ["v"]
    [third] = await planes.collect(url, 1)
    assert third.system_attributes["ApproximateReceiveCount"] == "3"


async def test_redrive_after_max_receive_count(planes: Planes, unique_name: Callable[..., str]) -> None:
    dlq = await planes.queue(unique_name("dlq"))
    policy = f'{{"deadLetterTargetArn":"{await planes.arn(dlq)}","maxReceiveCount":2}}'
    url = await planes.queue(unique_name(), RedrivePolicy=policy)
    sent = await planes.data.send_batch(url, [SendEntry("a", "poison")])
    for count in ("1", "2"):
        [message] = await planes.collect(url, 1, visibility_timeout=0)
        assert message.system_attributes["ApproximateReceiveCount"] == count
    # A third receive would exceed maxReceiveCount: the message moves to the dead-letter queue instead.
    assert await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=0) == []
    [dead] = await planes.collect(dlq, 1)
    assert (dead.message_id, dead.body) == (sent.succeeded[0].message_id, "poison")


async def test_dead_letter_source_queues(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("ministack", "ListDeadLetterSourceQueues is not implemented")
    dlq = await planes.queue(unique_name("dlq"))
    policy = f'{{"deadLetterTargetArn":"{await planes.arn(dlq)}","maxReceiveCount":3}}'
    source = await planes.queue(unique_name(), RedrivePolicy=policy)
    assert await planes.control.list_dead_letter_source_queues(dlq) == [source]


async def test_message_delay(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name())
    await planes.data.send_batch(url, [SendEntry("a", "later", delay_seconds=1)])
    assert await planes.data.receive(url, max_messages=10, wait_seconds=0, visibility_timeout=None) == []
    [message] = await planes.collect(url, 1, wait=6)
    assert message.body == "later"


async def test_long_poll_returns_a_message_sent_while_waiting(
    planes: Planes, unique_name: Callable[..., str]
) -> None:
    url = await planes.queue(unique_name())
    received = []

    async def poll() -> None:
        received.extend(
            await planes.data.receive(url, max_messages=10, wait_seconds=10, visibility_timeout=None)
        )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(poll)
        await anyio.sleep(0.3)
        await planes.data.send_batch(url, [SendEntry("a", "wake up")])
    assert [m.body for m in received] == ["wake up"]


# aiohttp warns about any request body over 1 MiB, which is what this test must send.
@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_batch_limits(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name())
    with pytest.raises(qfan.InvalidParameter):
        await planes.data.send_batch(url, [SendEntry(str(i), "x") for i in range(11)])
    with pytest.raises(qfan.BatchTooLarge):
        await planes.data.send_batch(url, [SendEntry(str(i), "x" * 200_000) for i in range(6)])


async def test_batch_entry_ids_must_be_distinct(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("ministack", "it accepts repeated and malformed batch entry ids")
    url = await planes.queue(unique_name())
    with pytest.raises(qfan.InvalidParameter) as repeated:
        await planes.data.send_batch(url, [SendEntry("a", "x"), SendEntry("a", "y")])
    assert repeated.value.code.endswith("BatchEntryIdsNotDistinct")
    with pytest.raises(qfan.InvalidParameter) as malformed:
        await planes.data.send_batch(url, [SendEntry("not valid!", "x")])
    assert malformed.value.code.endswith("InvalidBatchEntryId")


async def test_oversize_entry_fails_alone(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("moto", "it rejects the whole batch when one entry is oversize")
    url = await planes.queue(unique_name(), MaximumMessageSize="1024")
    result = await planes.data.send_batch(url, [SendEntry("big", "x" * 1100), SendEntry("ok", "y" * 10)])
    assert [s.id for s in result.succeeded] == ["ok"]
    assert [(f.id, f.code) for f in result.failed] == [("big", "InvalidParameterValue")]


async def test_unknown_queue(planes: Planes, unique_name: Callable[..., str]) -> None:
    with pytest.raises(qfan.QueueNotFound):
        await planes.control.get_queue_url(unique_name("missing"))
    url = await planes.queue(unique_name())
    await planes.control.delete_queue(url)
    with pytest.raises(qfan.QueueNotFound):
        await planes.data.send_batch(url, [SendEntry("a", "x")])
    with pytest.raises(qfan.QueueNotFound):
        await planes.data.receive(url, max_messages=1, wait_seconds=0, visibility_timeout=None)
    with pytest.raises(qfan.QueueNotFound):
        await planes.control.get_queue_attributes(url)


async def test_invalid_receipt_handles_fail_per_entry(
    planes: Planes, unique_name: Callable[..., str]
) -> None:
    url = await planes.queue(unique_name())
    await planes.data.send_batch(url, [SendEntry("a", "x")])
    [message] = await planes.collect(url, 1)
    deleted = await planes.data.delete_batch(
        url, [ReceiptEntry("good", message.receipt_handle), ReceiptEntry("bad", "garbage")]
    )
    assert deleted.succeeded == ["good"]
    assert [(f.id, f.code) for f in deleted.failed] == [("bad", "ReceiptHandleIsInvalid")]
    changed = await planes.data.change_visibility_batch(url, [VisibilityEntry("bad", "garbage", 5)])
    assert [(f.id, f.code) for f in changed.failed] == [("bad", "ReceiptHandleIsInvalid")]


async def test_deleting_a_deleted_message_succeeds(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("ministack", "it refuses the receipt handle of a message already deleted")
    url = await planes.queue(unique_name())
    await planes.data.send_batch(url, [SendEntry("a", "x")])
    [message] = await planes.collect(url, 1)
    for _ in range(2):
        result = await planes.data.delete_batch(url, [ReceiptEntry("a", message.receipt_handle)])
        assert result.succeeded == ["a"]


async def test_change_visibility_of_a_message_not_in_flight(
    planes: Planes, unique_name: Callable[..., str]
) -> None:
    planes.deviates("moto", "it changes the visibility of a message that is no longer in flight")
    planes.deviates("ministack", "it changes the visibility of a message that is no longer in flight")
    url = await planes.queue(unique_name())
    await planes.data.send_batch(url, [SendEntry("a", "x")])
    [message] = await planes.collect(url, 1, visibility_timeout=0)
    result = await planes.data.change_visibility_batch(
        url, [VisibilityEntry("a", message.receipt_handle, 30)]
    )
    assert [f.code for f in result.failed] == ["MessageNotInflight"]
