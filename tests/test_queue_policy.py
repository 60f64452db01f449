"""The queue policy document qfan writes for SNS subscriptions (a document test: emulators ignore it)."""

import json

from qfan._resources._queue_policy import merge_sns_statement, statement_id

QUEUE = "arn:aws:sqs:eu-west-1:111122223333:orders"
TOPIC = "arn:aws:sns:eu-west-1:111122223333:events"


def test_statement_on_an_empty_policy() -> None:
    merged = merge_sns_statement(None, QUEUE, TOPIC)
    assert merged is not None
    assert json.loads(merged) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": statement_id(TOPIC),
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": QUEUE,
                "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}},
            }
        ],
    }
    assert merge_sns_statement(merged, QUEUE, TOPIC) is None  # idempotent


def test_other_statements_are_kept_and_a_stale_one_corrected() -> None:
    user = {"Sid": "Mine", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": QUEUE}
    stale = {"Sid": statement_id(TOPIC), "Effect": "Allow", "Resource": "somewhere else"}
    document = {"Version": "2012-10-17", "Id": "keep-me", "Statement": [user, stale]}
    merged = merge_sns_statement(json.dumps(document), QUEUE, TOPIC)
    assert merged is not None
    result = json.loads(merged)
    assert result["Id"] == "keep-me"
    assert result["Statement"][0] == user
    assert len(result["Statement"]) == 2
    assert result["Statement"][1]["Resource"] == QUEUE


def test_single_statement_object_and_a_second_topic() -> None:
    user = {"Sid": "Mine", "Effect": "Allow", "Principal": "*", "Action": "sqs:ReceiveMessage"}
    merged = merge_sns_statement(json.dumps({"Statement": user}), QUEUE, TOPIC)
    assert merged is not None
    other_topic = TOPIC + "-2"
    both = merge_sns_statement(merged, QUEUE, other_topic)
    assert both is not None
    sids = [s["Sid"] for s in json.loads(both)["Statement"]]
    assert sids == ["Mine", statement_id(TOPIC), statement_id(other_topic)]
