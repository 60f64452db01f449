"""SNS over an aiobotocore client: topics, PublishBatch and subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ._botocore import batch_item, collect_pages, entry_failures, open_client
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
        request = [
            batch_item(e.id, ("Message", e.body), e.attributes, e.group_id, e.dedup_id, Subject=e.subject)
            for e in entries
        ]
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

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """``operation`` (its API name) with ``params``, AWS errors mapped to qfan's."""
        method = getattr(self._client, _snake(operation))
        with map_aws_errors(operation):
            response: dict[str, Any] = await method(**params)
        return response

    async def find_topic(self, name: str) -> str | None:
        """The ARN of the topic called ``name``, or ``None`` (ListTopics, all pages)."""
        topics = await collect_pages("ListTopics", self._client.list_topics, "Topics")
        arns = [str(topic["TopicArn"]) for topic in topics]
        return next((arn for arn in arns if arn.rpartition(":")[2] == name), None)

    async def create_topic(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        params: dict[str, Any] = {"Name": name, "Attributes": dict(attributes)}
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return str((await self._call("CreateTopic", **params))["TopicArn"])

    async def get_topic_attributes(self, topic_arn: str) -> dict[str, str]:
        return dict((await self._call("GetTopicAttributes", TopicArn=topic_arn)).get("Attributes", {}))

    async def set_topic_attribute(self, topic_arn: str, name: str, value: str) -> None:
        await self._call("SetTopicAttributes", TopicArn=topic_arn, AttributeName=name, AttributeValue=value)

    async def delete_topic(self, topic_arn: str) -> None:
        await self._call("DeleteTopic", TopicArn=topic_arn)

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        """Every subscription of the topic (all pages): SubscriptionArn, Protocol, Endpoint."""
        return await collect_pages(
            "ListSubscriptionsByTopic",
            self._client.list_subscriptions_by_topic,
            "Subscriptions",
            TopicArn=topic_arn,
        )

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        params = {"Protocol": "sqs", "Endpoint": queue_arn, "Attributes": dict(attributes)}
        response = await self._call("Subscribe", TopicArn=topic_arn, ReturnSubscriptionArn=True, **params)
        return str(response["SubscriptionArn"])

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        response = await self._call("GetSubscriptionAttributes", SubscriptionArn=subscription_arn)
        return dict(response.get("Attributes", {}))

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None:
        params = {"AttributeName": name, "AttributeValue": value}
        await self._call("SetSubscriptionAttributes", SubscriptionArn=subscription_arn, **params)


@asynccontextmanager
async def open_sns(settings: ConnectionSettings) -> AsyncIterator[BotocoreSns]:
    """Open one pooled aiobotocore SNS client for the lifetime of the block."""
    async with open_client(settings, "sns") as client:
        yield BotocoreSns(client)


def _snake(operation: str) -> str:
    """``SetTopicAttributes`` -> ``set_topic_attributes``: the client's method for an API operation."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
