"""The queue policy statement that lets an SNS topic deliver to a queue, merged into the user's policy.

On AWS a subscribed queue only receives from SNS if its ``Policy`` allows ``sqs:SendMessage`` for the
``sns.amazonaws.com`` service with ``aws:SourceArn`` equal to the topic (emulators don't check it). The
statement is identified by a ``Sid`` derived from the topic ARN, so merging is idempotent and leaves the
user's other statements untouched.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_VERSION = "2012-10-17"


def statement_id(topic_arn: str) -> str:
    """A stable ``Sid`` for the topic's statement (alphanumeric, as IAM wants)."""
    return "qfanSns" + hashlib.sha256(topic_arn.encode()).hexdigest()[:16]


def sns_statement(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """The statement allowing ``topic_arn`` to send to ``queue_arn``."""
    return {
        "Sid": statement_id(topic_arn),
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    }


def merge_sns_statement(policy: str | None, queue_arn: str, topic_arn: str) -> str | None:
    """The queue policy with the topic's statement added or corrected, or ``None`` if it is already there.

    Other statements (the user's) are kept as they are, in order.
    """
    document: dict[str, Any] = json.loads(policy) if policy else {}
    statements = document.get("Statement", [])
    if isinstance(statements, dict):  # a policy may hold one statement without a list
        statements = [statements]
    wanted = sns_statement(queue_arn, topic_arn)
    kept = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == wanted["Sid"])]
    if len(kept) < len(statements) and wanted in statements:
        return None
    return json.dumps(
        {**document, "Version": document.get("Version", _VERSION), "Statement": [*kept, wanted]},
        separators=(",", ":"),
    )
