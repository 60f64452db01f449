"""The transport seam: the planes qfan speaks to AWS through, and the :class:`Transport` that opens them.

Every plane makes exactly one request per call and maps errors into qfan's tree (``map_aws_errors``
semantics); retrying is not a plane's job — the retrying wrappers in ``_retrying`` apply the app's
``RetryPolicy`` to every call. ``"fast"`` and ``"botocore"`` are the AWS transports; ``qfan.testing``
provides in-memory planes behind the same Protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, Unpack, runtime_checkable

from . import _types as wire

if TYPE_CHECKING:
    from ._settings import ConnectionSettings


class SqsDataPlane(Protocol):
    """The four per-message SQS calls. Implementations map errors with ``map_aws_errors`` semantics.

    They make exactly one request per call: retrying is the caller's job (see ``RetryPolicy``).
    """

    async def send_batch(
        self, queue_url: str, entries: Sequence[wire.SendEntry]
    ) -> wire.BatchResult[wire.SentMessage]:
        """SendMessageBatch: at most 10 entries."""
        ...

    async def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None
    ) -> list[wire.ReceivedMessage]:
        """ReceiveMessage with all message attributes and system attributes."""
        ...

    async def delete_batch(
        self, queue_url: str, entries: Sequence[wire.ReceiptEntry]
    ) -> wire.BatchResult[str]:
        """DeleteMessageBatch: at most 10 entries; succeeded holds entry ids."""
        ...

    async def change_visibility_batch(
        self, queue_url: str, entries: Sequence[wire.VisibilityEntry]
    ) -> wire.BatchResult[str]:
        """ChangeMessageVisibilityBatch: at most 10 entries; succeeded holds entry ids."""
        ...


class SqsControlPlane(Protocol):
    """Queue management calls: rare, so simplicity beats speed here."""

    async def get_queue_url(self, name: str) -> str: ...

    async def create_queue(
        self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]
    ) -> str: ...

    async def get_queue_attributes(self, queue_url: str) -> dict[str, str]: ...

    async def set_queue_attributes(self, queue_url: str, attributes: Mapping[str, str]) -> None: ...

    async def list_queue_tags(self, queue_url: str) -> dict[str, str]: ...

    async def tag_queue(self, queue_url: str, tags: Mapping[str, str]) -> None: ...

    async def delete_queue(self, queue_url: str) -> None: ...

    async def purge_queue(self, queue_url: str) -> None: ...

    async def list_queues(self, prefix: str) -> list[str]: ...

    async def list_dead_letter_source_queues(self, queue_url: str) -> list[str]: ...

    async def start_message_move_task(self, source_arn: str, destination_arn: str | None) -> str: ...

    async def list_message_move_tasks(self, source_arn: str) -> list[wire.MoveTask]: ...


class ObjectStore(Protocol):
    """The S3 calls that offloaded payloads need; one request per call, errors mapped."""

    async def put_object(
        self, bucket: str, key: str, data: bytes, **options: Unpack[wire.PutOptions]
    ) -> None: ...

    async def get_object(self, bucket: str, key: str, *, max_size: int) -> wire.StoredObject: ...

    async def delete_object(self, bucket: str, key: str) -> None: ...

    async def create_bucket(self, bucket: str) -> None: ...

    async def update_lifecycle_rules(self, bucket: str, change: wire.LifecycleChange) -> None: ...


class SnsPlane(Protocol):
    """The SNS calls qfan makes: PublishBatch, and topic and subscription management."""

    async def publish_batch(
        self, topic_arn: str, entries: Sequence[wire.PublishEntry]
    ) -> wire.BatchResult[wire.PublishedMessage]:
        """PublishBatch: at most 10 entries."""
        ...

    async def find_topic(self, name: str) -> str | None:
        """The ARN of the topic called ``name``, or ``None``."""
        ...

    async def create_topic(
        self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]
    ) -> str: ...

    async def get_topic_attributes(self, topic_arn: str) -> dict[str, str]: ...

    async def set_topic_attribute(self, topic_arn: str, name: str, value: str) -> None: ...

    async def delete_topic(self, topic_arn: str) -> None: ...

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        """Every subscription of the topic: ``SubscriptionArn``, ``Protocol``, ``Endpoint``."""
        ...

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        """Subscribe an SQS queue; returns the subscription ARN."""
        ...

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]: ...

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None: ...


class KeyValueTable(Protocol):
    """The DynamoDB calls a record store needs (idempotency records); items are plain values.

    Conditional writes answer ``False`` when their condition does not hold (another writer got there first).
    """

    async def ensure_table(self, table: str, key: str, ttl_attribute: str | None) -> bool:
        """Create the table unless it exists (idempotent), wait until active; True when it was created."""
        ...

    async def put_item(
        self, table: str, item: wire.Item, *, condition: str | None = None, values: wire.Item | None = None
    ) -> bool: ...

    async def delete_item(
        self, table: str, key: wire.Item, *, condition: str | None = None, values: wire.Item | None = None
    ) -> bool: ...

    async def get_item(self, table: str, key: wire.Item) -> dict[str, wire.ItemValue] | None: ...


@runtime_checkable
class Transport(Protocol):
    """Opens the planes an App talks through, each for as long as the app is open.

    ``App(transport=...)`` takes ``"fast"`` or ``"botocore"`` (the AWS transports) or an object with these
    three methods, e.g. ``qfan.testing.MemoryTransport()``. The app opens SQS when it is entered, and SNS
    and S3 only when a topic or an offloading queue first needs them.
    """

    name: str

    def open_sqs(
        self, settings: ConnectionSettings
    ) -> AbstractAsyncContextManager[tuple[SqsDataPlane, SqsControlPlane]]:
        """The SQS data plane (per-message calls) and control plane (queue management)."""
        ...

    def open_sns(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[SnsPlane]:
        """The SNS plane."""
        ...

    def open_s3(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[ObjectStore]:
        """The S3 plane of offloaded payloads."""
        ...


@runtime_checkable
class TableTransport(Protocol):
    """A transport that also opens DynamoDB (the AWS transports do; it is optional for others)."""

    def open_dynamodb(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[KeyValueTable]:
        """The DynamoDB plane of record stores."""
        ...
