"""SNS over an aiobotocore client: topics, PublishBatch and subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ._botocore import collect_pages, entry_failures, fifo_fields, open_client, wire_to_boto
from ._errors import map_aws_errors
from ._settings import ConnectionSettings
from ._types import BatchResult, PublishedMessage, PublishEntry


class BotocoreSns:
    """The SNS calls qfan makes."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def publish_batch(
        self, topic_arn: str, entries: Sequence[PublishEntry]
    ) -> BatchResult[PublishedMessage]:
        request = []
        for entry in entries:
            item: dict[str, Any] = {"Id": entry.id, "Message": entry.body}
            if entry.attributes:
                item["MessageAttributes"] = wire_to_boto(entry.attributes)
            if entry.subject is not None:
                item["Subject"] = entry.subject
            item.update(fifo_fields(entry.group_id, entry.dedup_id))
            request.append(item)
        with map_aws_errors("PublishBatch"):
            response = await self._client.publish_batch(
                TopicArn=topic_arn, PublishBatchRequestEntries=request
            )
        return BatchResult(
            succeeded=[
                PublishedMessage(ok["Id"], ok["MessageId"], ok.get("SequenceNumber"))
                for ok in response.get("Successful", ())
            ],
            failed=entry_failures(response),
        )

    async def find_topic(self, name: str) -> str | None:
        """The ARN of the topic called ``name``, or ``None`` (ListTopics, all pages)."""
        topics = await collect_pages("ListTopics", self._client.list_topics, "Topics")
        arns = [str(topic["TopicArn"]) for topic in topics]
        return next((arn for arn in arns if arn.rpartition(":")[2] == name), None)

    async def create_topic(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        params: dict[str, Any] = {"Name": name, "Attributes": dict(attributes)}
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        with map_aws_errors("CreateTopic"):
            response = await self._client.create_topic(**params)
        return str(response["TopicArn"])

    async def get_topic_attributes(self, topic_arn: str) -> dict[str, str]:
        with map_aws_errors("GetTopicAttributes"):
            response = await self._client.get_topic_attributes(TopicArn=topic_arn)
        return dict(response.get("Attributes", {}))

    async def set_topic_attribute(self, topic_arn: str, name: str, value: str) -> None:
        with map_aws_errors("SetTopicAttributes"):
            await self._client.set_topic_attributes(
                TopicArn=topic_arn, AttributeName=name, AttributeValue=value
            )

    async def delete_topic(self, topic_arn: str) -> None:
        with map_aws_errors("DeleteTopic"):
            await self._client.delete_topic(TopicArn=topic_arn)

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        """Every subscription of the topic (all pages): SubscriptionArn, Protocol, Endpoint."""
        return await collect_pages(
            "ListSubscriptionsByTopic",
            self._client.list_subscriptions_by_topic,
            "Subscriptions",
            TopicArn=topic_arn,
        )

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        with map_aws_errors("Subscribe"):
            response = await self._client.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes=dict(attributes),
                ReturnSubscriptionArn=True,
            )
        return str(response["SubscriptionArn"])

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        with map_aws_errors("GetSubscriptionAttributes"):
            response = await self._client.get_subscription_attributes(SubscriptionArn=subscription_arn)
        return dict(response.get("Attributes", {}))

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None:
        with map_aws_errors("SetSubscriptionAttributes"):
            await self._client.set_subscription_attributes(
                SubscriptionArn=subscription_arn, AttributeName=name, AttributeValue=value
            )


@asynccontextmanager
async def open_sns(settings: ConnectionSettings) -> AsyncIterator[BotocoreSns]:
    """Open one pooled aiobotocore SNS client for the lifetime of the block."""
    async with open_client(settings, "sns") as client:
        yield BotocoreSns(client)
