"""SNS topics: declared idempotently, published to with the same encoding as queues, coalesced batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .._exceptions import ConfigError, TopicConflict
from .._pipeline._connection import Connection
from .._pipeline._offload import Offload
from .._pipeline._outbound import Outbound, sns_batches
from .._pipeline._outgoing import Destination
from .._pipeline._payloads import Payloads
from .._transport import RetryingSns
from .._wire._attributes import AttributeValue
from .._wire._codec import Encoder, Format
from ._handle import Handle
from ._queue_options import attribute_differences

T = TypeVar("T")

SNS_MAX_MESSAGE_SIZE = 262_144
"""SNS's limit for one message, body plus attributes (256 KiB)."""

ThroughputScope = Literal["Topic", "MessageGroup"]

_MAX_RETENTION = 1_209_600


@dataclass(frozen=True, slots=True)
class TopicOptions:
    """What a topic declaration may say; ``None`` = AWS's default, not compared with an existing topic."""

    name: str
    fifo: bool | None = None
    content_based_dedup: bool | None = None
    kms_key: str | None = None
    throughput_scope: ThroughputScope | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fifo is None:
            object.__setattr__(self, "fifo", self.name.endswith(".fifo"))
        stem = self.name.removesuffix(".fifo")
        if not 1 <= len(self.name) <= 256 or not all(
            c.isascii() and (c.isalnum() or c in "-_") for c in stem
        ):
            raise ConfigError(f"topic name {self.name!r}: 1-256 characters of A-Z a-z 0-9 - _ (and '.fifo')")
        if bool(self.fifo) != self.name.endswith(".fifo"):
            raise ConfigError(f"topic {self.name!r}: FIFO topic names end in '.fifo', and only those")
        if not self.fifo and (self.content_based_dedup or self.throughput_scope):
            raise ConfigError(f"topic {self.name!r}: content_based_dedup and throughput_scope need FIFO")

    def attributes(self) -> dict[str, str]:
        """The SNS attributes this declaration asks for."""
        wanted: dict[str, str] = {}
        if self.fifo:
            wanted["FifoTopic"] = "true"
        if self.content_based_dedup is not None:
            wanted["ContentBasedDeduplication"] = "true" if self.content_based_dedup else "false"
        if self.kms_key is not None:
            wanted["KmsMasterKeyId"] = self.kms_key
        if self.throughput_scope is not None:
            wanted["FifoThroughputScope"] = self.throughput_scope
        return wanted


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What declaring a topic learned: its ARN and attributes."""

    arn: str
    attributes: Mapping[str, str]


class _Declared:
    def __init__(
        self,
        topic: Topic[Any],
        connection: Connection,
        sns: RetryingSns,
        info: TopicInfo,
        payloads: Payloads | None,
    ) -> None:
        self.connection = connection
        self.sns = sns
        self.info = info
        self.payloads = payloads
        content_based_dedup = info.attributes.get("ContentBasedDeduplication", "").lower() == "true"
        self.outbound = Outbound(
            Destination(
                topic.name,
                topic.fifo,
                content_based_dedup,
                SNS_MAX_MESSAGE_SIZE,
                delay_allowed=False,
                system="aws_sns",
            ),
            topic.encoder,
            payloads,
            sns_batches(sns, info.arn),
            linger=connection.linger,
            hooks=connection.hooks,
        )


class Topic(Handle[_Declared, TopicInfo], Generic[T]):
    """A handle on one SNS topic; create it with :meth:`qfan.App.topic`."""

    def __init__(
        self,
        options: TopicOptions,
        *,
        format: Format,
        connect: Callable[[], Connection],
        offload: Offload | None = None,
    ) -> None:
        super().__init__(options, connect)
        self.options = options
        self.offload = offload
        self.encoder = Encoder(format)

    async def _declare_on(self, connection: Connection) -> _Declared:
        sns = await connection.sns()
        info = await self._declare(sns)
        return _Declared(self, connection, sns, info, await self._payloads(connection))

    async def _payloads(self, conn: Connection) -> Payloads | None:
        if self.offload is None:
            return None
        payloads = Payloads(
            self.offload,
            await conn.s3(),
            queue=self.name,
            max_message_size=SNS_MAX_MESSAGE_SIZE,
            hooks=conn.hooks,
        )
        # Subscribed queues keep messages at most 14 days: payloads must outlive any of them.
        await payloads.declare(_MAX_RETENTION)
        return payloads

    async def _declare(self, sns: RetryingSns) -> TopicInfo:
        wanted = self.options.attributes()
        arn = await sns.find_topic(self.name)
        if arn is None:
            arn = await sns.create_topic(self.name, wanted, self.options.tags)
            return TopicInfo(arn, await sns.get_topic_attributes(arn))
        existing = await sns.get_topic_attributes(arn)
        differences = attribute_differences(wanted, existing)
        if differences:
            raise TopicConflict(self.name, differences)
        return TopicInfo(arn, existing)

    async def delete(self) -> None:
        """Delete the topic (and with it its subscriptions). The handle declares it again on next use."""
        state = await self._state()
        await state.sns.delete_topic(state.info.arn)
        self._declared = None

    async def publish(
        self,
        value: T,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        subject: str | None = None,
    ) -> str:
        """Publish one message and return its SNS message id.

        Concurrent calls are coalesced into ``PublishBatch`` (at most 10 entries and 256 KiB in total);
        each caller gets its own message id or its own error. Subscribed queues' filter policies see
        ``attributes`` (and, with a body-scoped policy, the JSON body).
        """
        outbound = (await self._state()).outbound
        return await outbound.send(
            value, group_id=group_id, dedup_id=dedup_id, attributes=attributes, subject=subject
        )

    async def publish_many(
        self,
        values: Iterable[T],
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
    ) -> list[str]:
        """Publish many messages in full batches (in order on FIFO topics); ``BatchSendError`` on failures."""
        outbound = (await self._state()).outbound
        return await outbound.send_many(values, group_id=group_id, attributes=attributes)
