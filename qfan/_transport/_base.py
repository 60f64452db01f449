"""The transport seam: the hot SQS operations, kept together so a leaner implementation can replace them,
and the S3 object operations of offloaded payloads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ._types import (
    BatchResult,
    LifecycleChange,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    StoredObject,
    VisibilityEntry,
)


class SqsDataPlane(Protocol):
    """The four per-message SQS calls. Implementations map errors with ``map_aws_errors`` semantics.

    They make exactly one request per call: retrying is the caller's job (see ``RetryPolicy``).
    """

    async def send_batch(self, queue_url: str, entries: Sequence[SendEntry]) -> BatchResult[SentMessage]:
        """SendMessageBatch: at most 10 entries."""
        ...

    async def receive(
        self,
        queue_url: str,
        *,
        max_messages: int,
        wait_seconds: int,
        visibility_timeout: int | None,
    ) -> list[ReceivedMessage]:
        """ReceiveMessage with all message attributes and system attributes."""
        ...

    async def delete_batch(self, queue_url: str, entries: Sequence[ReceiptEntry]) -> BatchResult[str]:
        """DeleteMessageBatch: at most 10 entries; succeeded holds entry ids."""
        ...

    async def change_visibility_batch(
        self, queue_url: str, entries: Sequence[VisibilityEntry]
    ) -> BatchResult[str]:
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


class ObjectStore(Protocol):
    """The S3 calls that offloaded payloads need; one request per call, errors mapped."""

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        encryption: Mapping[str, str] | None = None,
    ) -> None: ...

    async def get_object(self, bucket: str, key: str, *, max_size: int) -> StoredObject: ...

    async def delete_object(self, bucket: str, key: str) -> None: ...

    async def create_bucket(self, bucket: str) -> None: ...

    async def update_lifecycle_rules(self, bucket: str, change: LifecycleChange) -> None: ...
