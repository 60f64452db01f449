"""The planes as the rest of qfan sees them: every call goes through the app's ``RetryPolicy``, once, here.

A plane makes one request per call; these wrappers make each call a retried one. Batch calls come back as
``(succeeded, errors)``: whole-call transient failures are retried, transient entry failures are sent again
alone, and every entry that did not succeed has the error it ended with (never dropped). Nothing outside
``qfan/_transport/`` calls the policy itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, Unpack

from .._exceptions import QfanError
from . import _types as wire
from ._base import KeyValueTable, ObjectStore, SnsPlane, SqsControlPlane, SqsDataPlane
from ._retry import RetryPolicy

T = TypeVar("T")
Answered = tuple[list[T], dict[str, QfanError]]
"""What a batch call did: the entries it succeeded with, and each other entry's error by entry id."""


@dataclass(eq=False)
class RetryingSqs:
    """SQS's data and control planes, every call retried by ``retry``.

    Attributes:
        data: the plane of per-message calls, unwrapped.
        control: the queue management plane, unwrapped.
        retry: the policy applied to every call.
    """

    data: SqsDataPlane
    control: SqsControlPlane
    retry: RetryPolicy

    # -- data plane -----------------------------------------------------------------------------------

    async def send_batch(
        self, queue_url: str, entries: Sequence[wire.SendEntry]
    ) -> Answered[wire.SentMessage]:
        """SendMessageBatch: what was sent, and each unsent entry's error by entry id."""
        return await self.retry.call_batch(
            "SendMessageBatch", partial(self.data.send_batch, queue_url), entries
        )

    async def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None
    ) -> list[wire.ReceivedMessage]:
        """ReceiveMessage with every attribute."""
        return await self.retry.call(
            partial(
                self.data.receive,
                queue_url,
                max_messages=max_messages,
                wait_seconds=wait_seconds,
                visibility_timeout=visibility_timeout,
            )
        )

    async def delete_batch(self, queue_url: str, entries: Sequence[wire.ReceiptEntry]) -> Answered[str]:
        """DeleteMessageBatch: the deleted entry ids, and each other entry's error."""
        return await self.retry.call_batch(
            "DeleteMessageBatch", partial(self.data.delete_batch, queue_url), entries
        )

    async def change_visibility_batch(
        self, queue_url: str, entries: Sequence[wire.VisibilityEntry]
    ) -> Answered[str]:
        """ChangeMessageVisibilityBatch: the changed entry ids, and each other entry's error."""
        return await self.retry.call_batch(
            "ChangeMessageVisibilityBatch", partial(self.data.change_visibility_batch, queue_url), entries
        )

    # -- control plane --------------------------------------------------------------------------------

    async def get_queue_url(self, name: str) -> str:
        return await self.retry.call(partial(self.control.get_queue_url, name))

    async def create_queue(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        return await self.retry.call(partial(self.control.create_queue, name, attributes, tags))

    async def get_queue_attributes(self, queue_url: str) -> dict[str, str]:
        return await self.retry.call(partial(self.control.get_queue_attributes, queue_url))

    async def set_queue_attributes(self, queue_url: str, attributes: Mapping[str, str]) -> None:
        await self.retry.call(partial(self.control.set_queue_attributes, queue_url, attributes))

    async def list_queue_tags(self, queue_url: str) -> dict[str, str]:
        return await self.retry.call(partial(self.control.list_queue_tags, queue_url))

    async def tag_queue(self, queue_url: str, tags: Mapping[str, str]) -> None:
        await self.retry.call(partial(self.control.tag_queue, queue_url, tags))

    async def delete_queue(self, queue_url: str) -> None:
        await self.retry.call(partial(self.control.delete_queue, queue_url))

    async def purge_queue(self, queue_url: str) -> None:
        await self.retry.call(partial(self.control.purge_queue, queue_url))

    async def list_queues(self, prefix: str) -> list[str]:
        return await self.retry.call(partial(self.control.list_queues, prefix))

    async def list_dead_letter_source_queues(self, queue_url: str) -> list[str]:
        return await self.retry.call(partial(self.control.list_dead_letter_source_queues, queue_url))

    async def start_message_move_task(self, source_arn: str, destination_arn: str | None) -> str:
        return await self.retry.call(
            partial(self.control.start_message_move_task, source_arn, destination_arn)
        )

    async def list_message_move_tasks(self, source_arn: str) -> list[wire.MoveTask]:
        return await self.retry.call(partial(self.control.list_message_move_tasks, source_arn))


@dataclass(eq=False)
class RetryingSns:
    """The SNS plane, every call retried by ``retry``."""

    plane: SnsPlane
    retry: RetryPolicy

    async def publish_batch(
        self, topic_arn: str, entries: Sequence[wire.PublishEntry]
    ) -> Answered[wire.PublishedMessage]:
        """PublishBatch: what was published, and each unpublished entry's error by entry id."""
        publish = partial(self.plane.publish_batch, topic_arn)
        return await self.retry.call_batch("PublishBatch", publish, entries)

    async def find_topic(self, name: str) -> str | None:
        return await self.retry.call(partial(self.plane.find_topic, name))

    async def create_topic(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        return await self.retry.call(partial(self.plane.create_topic, name, attributes, tags))

    async def get_topic_attributes(self, topic_arn: str) -> dict[str, str]:
        return await self.retry.call(partial(self.plane.get_topic_attributes, topic_arn))

    async def set_topic_attribute(self, topic_arn: str, name: str, value: str) -> None:
        await self.retry.call(partial(self.plane.set_topic_attribute, topic_arn, name, value))

    async def delete_topic(self, topic_arn: str) -> None:
        await self.retry.call(partial(self.plane.delete_topic, topic_arn))

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        return await self.retry.call(partial(self.plane.list_subscriptions, topic_arn))

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        return await self.retry.call(partial(self.plane.subscribe, topic_arn, queue_arn, attributes))

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        return await self.retry.call(partial(self.plane.get_subscription_attributes, subscription_arn))

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None:
        await self.retry.call(partial(self.plane.set_subscription_attribute, subscription_arn, name, value))


@dataclass(eq=False)
class RetryingObjectStore:
    """The S3 plane of offloaded payloads, every call retried by ``retry`` (keys make puts idempotent)."""

    plane: ObjectStore
    retry: RetryPolicy

    async def put_object(
        self, bucket: str, key: str, data: bytes, **options: Unpack[wire.PutOptions]
    ) -> None:
        await self.retry.call(partial(self.plane.put_object, bucket, key, data, **options))

    async def get_object(self, bucket: str, key: str, *, max_size: int) -> wire.StoredObject:
        return await self.retry.call(partial(self.plane.get_object, bucket, key, max_size=max_size))

    async def delete_object(self, bucket: str, key: str) -> None:
        await self.retry.call(partial(self.plane.delete_object, bucket, key))

    async def create_bucket(self, bucket: str) -> None:
        await self.retry.call(partial(self.plane.create_bucket, bucket))

    async def update_lifecycle_rules(self, bucket: str, change: wire.LifecycleChange) -> None:
        await self.retry.call(partial(self.plane.update_lifecycle_rules, bucket, change))


class RetryingKeyValueTable:
    """The DynamoDB plane, every call retried by ``retry``.

    A conditional write whose answer was lost and that is then retried may find its own write in the way
    (answering ``False``); record stores read the item back to tell that from another writer's.
    """

    def __init__(self, table: KeyValueTable, retry: RetryPolicy) -> None:
        self.plane = table
        self.retry = retry

    async def ensure_table(self, table: str, key: str, ttl_attribute: str | None) -> bool:
        return await self.retry.call(partial(self.plane.ensure_table, table, key, ttl_attribute))

    async def put_item(
        self, table: str, item: wire.Item, *, condition: str | None = None, values: wire.Item | None = None
    ) -> bool:
        return await self.retry.call(
            partial(self.plane.put_item, table, item, condition=condition, values=values)
        )

    async def delete_item(
        self, table: str, key: wire.Item, *, condition: str | None = None, values: wire.Item | None = None
    ) -> bool:
        return await self.retry.call(
            partial(self.plane.delete_item, table, key, condition=condition, values=values)
        )

    async def get_item(self, table: str, key: wire.Item) -> dict[str, wire.ItemValue] | None:
        return await self.retry.call(partial(self.plane.get_item, table, key))
