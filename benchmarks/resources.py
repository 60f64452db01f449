"""The harness's own AWS calls (plain aiobotocore): create each cell's queues, topic and bucket, drain
what a client published to verify it by id, and delete everything afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .common import ids_in

FANOUT_QUEUES = 3


@dataclass
class Resources:
    """What one cell uses; all of it is deleted after the cell."""

    queue_url: str = ""
    queue_name: str = ""
    reply_queue_url: str = ""
    topic_arn: str = ""
    bucket: str = ""
    fanout_queue_urls: list[str] = field(default_factory=list)


class Admin:
    """One aiobotocore session with SQS, SNS and S3 clients for the harness."""

    def __init__(self, endpoint_url: str | None, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.sqs: Any = None
        self.sns: Any = None
        self.s3: Any = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Admin]:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        session = get_session()
        kwargs: dict[str, Any] = {"region_name": self.region, "endpoint_url": self.endpoint_url}
        s3 = {"addressing_style": "path"} if self.endpoint_url else {}  # emulators want path style
        s3_config = AioConfig(s3=s3, max_pool_connections=32)
        async with (
            session.create_client("sqs", config=AioConfig(max_pool_connections=32), **kwargs) as self.sqs,
            session.create_client("sns", **kwargs) as self.sns,
            session.create_client("s3", config=s3_config, **kwargs) as self.s3,
        ):
            yield self

    async def create(self, scenario: str, tag: str) -> Resources:
        name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
        made = Resources(queue_name=name)
        # Offload's inline baseline sends 300 KiB bodies: SQS allows up to 1 MiB, some servers default lower.
        try:
            size = {"MaximumMessageSize": "1048576"} if scenario == "offload" else {}
            made.queue_url = await self._queue(name, size)
        except self.sqs.exceptions.ClientError:  # MiniStack caps it at 256 KiB
            made.queue_url = await self._queue(name)
        if scenario == "rpc":
            made.reply_queue_url = await self._queue(f"{name}-reply")
        if scenario == "fanout":
            made.topic_arn = (await self.sns.create_topic(Name=name))["TopicArn"]
            for n in range(FANOUT_QUEUES):
                url = await self._queue(f"{name}-sub{n}")
                made.fanout_queue_urls.append(url)
                arn = (await self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
                    "Attributes"
                ]["QueueArn"]
                # AWS delivers from SNS only where the queue's policy allows it (emulators don't check).
                policy = _allow_topic(arn, made.topic_arn)
                await self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
                await self.sns.subscribe(
                    TopicArn=made.topic_arn,
                    Protocol="sqs",
                    Endpoint=arn,
                    Attributes={"RawMessageDelivery": "true"},
                )
        if scenario in ("offload", "rpc"):  # rpc: taskiq's result backend is S3
            made.bucket = name
            location = {}
            if self.region != "us-east-1":  # S3's one region that refuses a location constraint
                location = {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
            await self.s3.create_bucket(Bucket=name, **location)
        return made

    async def _queue(self, name: str, attributes: dict[str, str] | None = None) -> str:
        attributes = {"VisibilityTimeout": "120", **(attributes or {})}
        response = await self.sqs.create_queue(QueueName=name, Attributes=attributes)
        return str(response["QueueUrl"])

    async def drain(self, queue_url: str, *, idle_polls: int = 2, receivers: int = 8) -> list[int]:
        """Receive and delete everything in the queue; return the benchmark ids found in the bodies.

        Stops after ``idle_polls`` consecutive empty 1-second long polls per receiver.
        """
        found: list[int] = []

        async def receiver() -> None:
            idle = 0
            while idle < idle_polls:
                response = await self.sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=120
                )
                messages = response.get("Messages", [])
                if not messages:
                    idle += 1
                    continue
                idle = 0
                for message in messages:
                    found.extend(_ids(message["Body"]))
                entries = [
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
                ]
                await self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)

        await asyncio.gather(*(receiver() for _ in range(receivers)))
        return found

    async def remaining(self, queue_url: str) -> int:
        """Messages still in the queue, visible or in flight (SQS's approximate counts)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = (await self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names))[
            "Attributes"
        ]
        return sum(int(attributes.get(name, 0)) for name in names)

    async def delete(self, made: Resources) -> None:
        urls = [u for u in (made.queue_url, made.reply_queue_url, *made.fanout_queue_urls) if u]
        for url in urls:
            await _quietly(self.sqs.delete_queue(QueueUrl=url))
        if made.topic_arn:
            await _quietly(self.sns.delete_topic(TopicArn=made.topic_arn))
        if made.bucket:
            listing = await _quietly(self.s3.list_objects_v2(Bucket=made.bucket))
            for item in (listing or {}).get("Contents", []):
                await _quietly(self.s3.delete_object(Bucket=made.bucket, Key=item["Key"]))
            await _quietly(self.s3.delete_bucket(Bucket=made.bucket))


def _allow_topic(queue_arn: str, topic_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
    )


def _ids(body: str) -> list[int]:
    """Ids in a body; an SNS envelope (raw delivery off) nests our JSON as a string, so unwrap it."""
    found = ids_in(body)
    if not found and body.startswith("{"):
        try:
            inner = json.loads(body).get("Message", "")
        except ValueError:
            return []
        return ids_in(inner) if isinstance(inner, str) else []
    return found


async def _quietly(call: Any) -> Any:
    try:
        return await call
    except Exception:  # cleanup must not hide the results
        return None
