"""Declaring queues against a real emulator: creation, idempotence, conflicts, updates, dead letters."""

import json
from collections.abc import Callable

import pytest

import qfan

from .helpers import AppFactory


async def test_declare_creates_the_queue_then_is_idempotent(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    name = unique_name()
    first = make_app()
    queue = first.queue(name, visibility_timeout=45, retention=3600, delay=2, tags={"team": "media"})
    async with first:
        info = queue.info
        assert info.url.endswith(name)
        assert info.arn.endswith(f":{name}")
        assert info.attributes["VisibilityTimeout"] == "45"
        assert info.attributes["MessageRetentionPeriod"] == "3600"
        assert info.attributes["DelaySeconds"] == "2"
        # read from the queue itself: 1 MiB on current SQS, 256 KiB on servers that keep the old default
        assert info.max_message_size == int(info.attributes["MaximumMessageSize"])

    second = make_app()
    again = second.queue(name, visibility_timeout=45, retention=3600, delay=2, tags={"team": "media"})
    async with second:
        assert again.info.url == info.url

    bare = make_app()
    plain = bare.queue(name)  # options left out are not compared with the existing queue
    async with bare:
        assert plain.info.url == info.url
        assert plain.info.attributes["VisibilityTimeout"] == "45"


async def test_existing_queue_with_other_attributes_is_a_clear_conflict(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    name = unique_name()
    async with make_app() as app:
        await app.queue(name, visibility_timeout=45).declare()

    app = make_app()
    app.queue(name, visibility_timeout=60, retention=3600)
    with pytest.raises(qfan.QueueConflict) as caught:
        async with app:
            pass
    assert caught.value.queue == name
    assert caught.value.differences["VisibilityTimeout"] == ("60", "45")
    assert caught.value.differences["MessageRetentionPeriod"][0] == "3600"
    assert "VisibilityTimeout: declared '60', existing '45'" in str(caught.value)


async def test_conflict_is_updated_when_asked(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    name = unique_name()
    async with make_app() as app:
        await app.queue(name, visibility_timeout=45).declare()

    app = make_app()
    queue = app.queue(name, visibility_timeout=60, tags={"owner": "qfan"}, on_conflict="update")
    async with app:
        assert queue.info.attributes["VisibilityTimeout"] == "60"
    # and the update is real: a plain declaration now agrees
    again = make_app()
    again.queue(name, visibility_timeout=60, tags={"owner": "qfan"})
    async with again:
        pass


async def test_tag_conflict(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    name = unique_name()
    async with make_app() as app:
        await app.queue(name, tags={"team": "a"}).declare()
    app = make_app()
    app.queue(name, tags={"team": "b"})
    with pytest.raises(qfan.QueueConflict, match="tag:team"):
        async with app:
            pass


async def test_fifo_options_become_attributes(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    queue = app.queue(unique_name(fifo=True), content_based_dedup=True, high_throughput=True)
    async with app:
        attributes = queue.info.attributes
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "true"
    assert attributes["DeduplicationScope"] == "messageGroup"
    assert attributes["FifoThroughputLimit"] == "perMessageGroupId"
    assert queue.info.content_based_dedup


async def test_dead_letter_queue_receives_after_max_receives(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), dead_letter=dead, max_receives=1)
    async with app:
        policy = json.loads(queue.info.attributes["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == dead.info.arn
        assert int(policy["maxReceiveCount"]) == 1

        await queue.send("poison")
        [message] = await queue.receive(wait=5)
        await message.nack()  # visible again at once; its next receive exceeds max_receives
        assert await queue.receive(wait=1) == []
        [moved] = await dead.receive(wait=5)
        assert moved.body == "poison"


async def test_lookup_only_queue_that_does_not_exist(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    app.queue(unique_name(), create=False)
    with pytest.raises(qfan.QueueNotFound) as caught:
        async with app:
            pass
    assert caught.value.operation == "GetQueueUrl"


async def test_delete_and_purge(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    queue = app.queue(unique_name())
    async with app:
        await queue.send_many(["a", "b", "c"])
        await queue.purge()
        assert await queue.receive(wait=1) == []
        await queue.delete()
    other = make_app()
    other.queue(queue.name, create=False)
    with pytest.raises(qfan.QueueNotFound):
        async with other:
            pass
