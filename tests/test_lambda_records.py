"""Lambda's record shapes and partial batch responses, as tables without I/O."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import qfan
from qfan._lambda import from_sns_record, from_sqs_record, sqs_record
from qfan._lambda._poller import reported_ids
from qfan._lambda._records import queue_name_of, record_source
from qfan._transport import ReceivedMessage, WireAttribute

ARN = "arn:aws:sqs:eu-west-1:123456789012:orders"
MESSAGE = ReceivedMessage(
    message_id="m-1",
    receipt_handle="rh-1",
    body='{"id":1}',
    attributes={
        "kind": WireAttribute("String", string_value="jpeg"),
        "blob": WireAttribute("Binary", binary_value=b"\x00\xff"),
        "n": WireAttribute("Number", string_value="7"),
    },
    system_attributes={"ApproximateReceiveCount": "2", "MessageGroupId": "g", "AWSTraceHeader": "Root=1-x"},
    md5_of_body="d41d8cd98f00b204e9800998ecf8427e",
    md5_of_attributes="0123456789abcdef0123456789abcdef",
)


def test_an_sqs_record_is_lambdas_documented_shape_and_converts_back() -> None:
    record = sqs_record(MESSAGE, ARN, "eu-west-1")
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == ARN
    assert record["awsRegion"] == "eu-west-1"
    assert record["messageAttributes"]["blob"] == {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
        "binaryValue": "AP8=",
    }
    assert record["messageAttributes"]["kind"]["stringValue"] == "jpeg"
    assert record["attributes"]["AWSTraceHeader"] == "Root=1-x"
    assert from_sqs_record(record) == MESSAGE


@pytest.mark.parametrize(
    "broken",
    [
        {"receiptHandle": "rh"},  # no messageId
        {
            "messageId": "m",
            "receiptHandle": "rh",
            "messageAttributes": {"a": {"dataType": "Binary", "binaryValue": "%%"}},
        },
        {"messageId": "m", "receiptHandle": "rh", "messageAttributes": ["not", "a", "map"]},
    ],
)
def test_a_malformed_sqs_record_is_a_config_error(broken: dict[str, Any]) -> None:
    with pytest.raises(qfan.ConfigError, match="malformed SQS event record"):
        from_sqs_record(broken)


def test_an_sns_record_becomes_its_envelope() -> None:
    record = {
        "EventSource": "aws:sns",
        "Sns": {
            "Type": "Notification",
            "MessageId": "sns-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:images",
            "Subject": None,
            "Message": '{"key":"a.jpg"}',
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "MessageAttributes": {"kind": {"Type": "String", "Value": "jpeg"}},
        },
    }
    topic, message = from_sns_record(record)
    assert topic == "arn:aws:sns:us-east-1:123456789012:images"
    assert message.message_id == "sns-1"
    assert '"MessageAttributes":{"kind":{"Type":"String","Value":"jpeg"}}' in message.body
    assert '"Subject"' not in message.body  # None is left out, as SNS leaves it out of envelopes
    assert record_source(record) == "aws:sns"


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        (ARN, "orders"),
        ("arn:aws:sqs:us-east-1:1:jobs.fifo", "jobs.fifo"),
        ("arn:aws:sns:us-east-1:1:t", None),
    ],
)
def test_queue_names_come_from_sqs_arns_only(arn: str, name: str | None) -> None:
    if name is None:
        with pytest.raises(qfan.ConfigError):
            queue_name_of(arn)
    else:
        assert queue_name_of(arn) == name


BATCH = [ReceivedMessage(message_id=i, receipt_handle=f"rh-{i}") for i in ("a", "b", "c")]


@pytest.mark.parametrize(
    ("response", "reported"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}, {"a", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),  # unknown id: the whole batch fails
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{}]}, None),
        ({"batchItemFailures": "b"}, None),
        ("ok", None),
    ],
)
def test_partial_batch_responses_as_lambda_reads_them(response: Any, reported: set[str] | None) -> None:
    assert reported_ids(response, BATCH) == reported


COLD_FUNCTION = """
import sys, qfan
from qfan._lambda import sqs_event
from qfan._transport import ReceivedMessage, md5_of_body

app = qfan.App("cold")
handled = []

@app.worker(app.queue("orders"))
async def handle(body: dict) -> None:
    handled.append(body)

handler = app.lambda_handler()
message = ReceivedMessage("m-1", "rh-1", '{"id": 1}', md5_of_body=md5_of_body('{"id": 1}'))
response = handler(sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:orders", "us-east-1"), None)
handler.close()
loaded = {m.split(".")[0] for m in sys.modules} & {"aiobotocore", "botocore", "aiohttp", "moto"}
print(response, handled, sorted(loaded))
"""


def test_a_cold_function_loads_no_aws_client_library_until_it_needs_one() -> None:
    """The cold start's big cost: aiobotocore, botocore and aiohttp wait until a plane is opened, and a
    batch that all succeeds opens none."""
    result = subprocess.run(
        [sys.executable, "-c", COLD_FUNCTION], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "{'batchItemFailures': []} [{'id': 1}] []"
