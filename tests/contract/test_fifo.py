"""SQS planes, FIFO queues: group order, one group in flight at a time, and deduplication."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from qfan._transport import ReceiptEntry, SendEntry

from .conftest import Planes


def entry(entry_id: str, body: str, group: str, dedup: str | None = None) -> SendEntry:
    return SendEntry(entry_id, body, group_id=group, dedup_id=dedup if dedup is not None else entry_id)


async def test_group_order_and_one_group_in_flight(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true")
    sent = await planes.data.send_batch(
        url, [entry("a1", "a1", "a"), entry("a2", "a2", "a"), entry("b1", "b1", "b")]
    )
    assert sent.failed == []
    sequences = [s.sequence_number or "" for s in sent.succeeded]
    assert all(sequences)
    if planes.emulator != "moto":  # moto's sequence numbers are random, AWS's increase
        assert sequences == sorted(sequences, key=int)
    [head] = await planes.data.receive(url, max_messages=1, wait_seconds=1, visibility_timeout=30)
    assert head.body == "a1"
    assert head.system_attributes["MessageGroupId"] == "a"
    assert head.system_attributes["MessageDeduplicationId"] == "a1"
    # Group a has a message in flight: only group b's message can be had.
    others = await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=30)
    assert [m.body for m in others] == ["b1"]
    assert await planes.data.receive(url, max_messages=10, wait_seconds=0, visibility_timeout=30) == []
    await planes.data.delete_batch(url, [ReceiptEntry("a1", head.receipt_handle)])
    [next_in_group] = await planes.collect(url, 1)
    assert next_in_group.body == "a2"


async def test_deduplication_within_the_window(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true")
    first = await planes.data.send_batch(url, [entry("one", "payload", "g", dedup="same")])
    again = await planes.data.send_batch(url, [entry("two", "payload again", "g", dedup="same")])
    assert again.failed == []
    [received] = await planes.collect(url, 1)
    assert received.body == "payload"
    assert await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=None) == []
    if planes.emulator != "moto":  # moto answers a duplicate with a new message id (AWS: the first one's)
        assert again.succeeded[0].message_id == first.succeeded[0].message_id


async def test_deduplication_survives_delete(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("moto", "it forgets a deduplication id once its message is deleted")
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true")
    await planes.data.send_batch(url, [entry("one", "payload", "g", dedup="same")])
    [message] = await planes.collect(url, 1)
    await planes.data.delete_batch(url, [ReceiptEntry("one", message.receipt_handle)])
    await planes.data.send_batch(url, [entry("two", "payload", "g", dedup="same")])
    assert await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=None) == []


async def test_content_based_deduplication(planes: Planes, unique_name: Callable[..., str]) -> None:
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true", ContentBasedDeduplication="true")
    for entry_id in ("one", "two"):
        result = await planes.data.send_batch(url, [SendEntry(entry_id, "same body", group_id="g")])
        assert result.failed == []
    [message] = await planes.collect(url, 1)
    assert await planes.data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=None) == []
    assert message.system_attributes["MessageDeduplicationId"] == hashlib.sha256(b"same body").hexdigest()


async def test_fifo_entries_need_a_group(planes: Planes, unique_name: Callable[..., str]) -> None:
    planes.deviates("moto", "it fails the whole batch instead of the entry without a group id")
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true")
    result = await planes.data.send_batch(
        url, [SendEntry("nogroup", "x", dedup_id="d1"), entry("ok", "y", "g")]
    )
    assert [s.id for s in result.succeeded] == ["ok"]
    assert [(f.id, f.code) for f in result.failed] == [("nogroup", "MissingParameter")]


async def test_redrive_keeps_fifo_order(planes: Planes, unique_name: Callable[..., str]) -> None:
    dlq = await planes.queue(unique_name("dlq", fifo=True), FifoQueue="true")
    policy = f'{{"deadLetterTargetArn":"{await planes.arn(dlq)}","maxReceiveCount":1}}'
    url = await planes.queue(unique_name(fifo=True), FifoQueue="true", RedrivePolicy=policy)
    await planes.data.send_batch(url, [entry("p", "poison", "g"), entry("n", "next", "g")])
    [poison] = await planes.data.receive(url, max_messages=1, wait_seconds=1, visibility_timeout=0)
    assert poison.body == "poison"
    # The head has used its one receive: it is dead-lettered and the group moves on.
    [following] = await planes.collect(url, 1)
    assert following.body == "next"
    [dead] = await planes.collect(dlq, 1)
    assert dead.body == "poison"
