"""Lambda events built the way Lambda's event sources build them, from messages really received.

Independent of qfan's own conversion (``qfan._lambda._records``): the messages are received with a plain
aiobotocore client asking for every attribute, and renamed into the documented record shapes
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, .../with-sns.html).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .aws import raw_client


@dataclass
class FakeContext:
    """Lambda's context object: the deadline counted from creation."""

    timeout: float = 30.0
    function_name: str = "qfan-test"
    aws_request_id: str = "test-request"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout - (time.monotonic() - self.started)) * 1000))


def sqs_record(message: dict[str, Any], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """One ReceiveMessage result (botocore's dict) as the SQS event source's record."""
    attributes: dict[str, Any] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        entry: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "BinaryValue" in value:
            entry["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        else:
            entry["stringValue"] = value["StringValue"]
        attributes[name] = entry
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


async def receive_raw(
    endpoint_url: str, queue: str, count: int, *, wait: int = 5
) -> tuple[list[dict[str, Any]], str]:
    """Receive ``count`` messages (all attributes) from ``queue``; the messages and the queue's ARN."""
    async with raw_client("sqs", endpoint_url) as sqs:
        url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
        arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
            "QueueArn"
        ]
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(messages) < count and time.monotonic() < deadline:
            answer = await sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, count - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
            messages.extend(answer.get("Messages", []))
    return messages, arn


async def sqs_event(endpoint_url: str, queue: str, count: int) -> dict[str, Any]:
    """An SQS event of ``count`` messages really received from ``queue``."""
    messages, arn = await receive_raw(endpoint_url, queue, count)
    assert len(messages) == count, f"received {len(messages)} of {count}"
    return {"Records": [sqs_record(m, arn) for m in messages]}


def sns_event(envelope_json: str, subscription_arn: str = "") -> dict[str, Any]:
    """An SNS event from a notification SNS really delivered (the envelope of a non-raw subscription)."""
    notification = json.loads(envelope_json)
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn or f"{notification['TopicArn']}:sub",
                "Sns": notification,
            }
        ]
    }
