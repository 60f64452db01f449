"""The settle decision as a table: outcome x receive count x policy -> action, without I/O."""

from typing import Any

import pytest

import qfan
from qfan._worker._settle import Action, DeadLetter, Delete, RetryAfter, Settled, SettlePolicy, decide

STEADY = qfan.Backoff(initial=2, maximum=60, jitter=0)  # delays 2, 4, 8, ... capped at 60
WITH_DLQ = SettlePolicy(STEADY, attempts_limit=3, has_dead_letter=True)
NO_LIMIT = SettlePolicy(STEADY, attempts_limit=None, has_dead_letter=True)
NO_DLQ = SettlePolicy(STEADY, attempts_limit=3, has_dead_letter=False)

BOOM = ValueError("boom")
REJECT = qfan.Reject("not for us")
UNDECODABLE = qfan.DecodeError("cannot decode", raw_body="x", content_type=None)
UNAVAILABLE = qfan.PayloadUnavailable("S3 is down", bucket="b", key="k", raw_body="p")

TABLE: list[tuple[str, BaseException | None, int, SettlePolicy, dict[str, bool], Action]] = [
    ("returned", None, 1, WITH_DLQ, {}, Delete()),
    ("raised Ack", qfan.Ack(), 5, WITH_DLQ, {}, Delete()),
    ("acked by the handler", None, 1, WITH_DLQ, {"settled": True}, Settled()),
    ("acked by the handler, then raised", BOOM, 1, WITH_DLQ, {"settled": True}, Settled()),
    ("raised Reject", REJECT, 1, WITH_DLQ, {}, DeadLetter("rejected: not for us", REJECT)),
    ("raised Retry(delay)", qfan.Retry(delay=7), 1, WITH_DLQ, {}, RetryAfter(7)),
    ("raised Retry()", qfan.Retry(), 3, WITH_DLQ, {}, RetryAfter(8)),
    ("Retry ignores the attempt limit", qfan.Retry(delay=0), 99, WITH_DLQ, {}, RetryAfter(0)),
    ("held back by an open breaker", qfan.CircuitOpen(delay=30), 1, WITH_DLQ, {}, RetryAfter(30)),
    (
        "tripped the breaker at the limit: not dead-lettered",
        qfan.CircuitOpen(delay=5),
        3,
        WITH_DLQ,
        {},
        RetryAfter(5),
    ),
    (
        "breaker open, no dead-letter queue: no undeliverable",
        qfan.CircuitOpen(delay=5),
        9,
        NO_DLQ,
        {},
        RetryAfter(5),
    ),
    ("failed, first attempt", BOOM, 1, WITH_DLQ, {}, RetryAfter(2)),
    ("failed, second attempt", BOOM, 2, WITH_DLQ, {}, RetryAfter(4)),
    ("failed at the limit", BOOM, 3, WITH_DLQ, {}, DeadLetter("failed 3 times: ValueError: boom", BOOM)),
    ("failed past the limit", BOOM, 4, WITH_DLQ, {}, DeadLetter("failed 4 times: ValueError: boom", BOOM)),
    ("failed, backoff capped", BOOM, 9, NO_LIMIT, {}, RetryAfter(60)),
    (
        "poison",
        UNDECODABLE,
        1,
        WITH_DLQ,
        {"poison": True},
        DeadLetter("poison message: cannot decode", UNDECODABLE),
    ),
    ("transient poison is an attempt", UNAVAILABLE, 1, WITH_DLQ, {"poison": True}, RetryAfter(2)),
    (
        "transient poison at the limit",
        UNAVAILABLE,
        3,
        WITH_DLQ,
        {"poison": True},
        DeadLetter("failed 3 times: PayloadUnavailable: S3 is down", UNAVAILABLE),
    ),
    (
        "a handler raising a DecodeError is a failure, not poison",
        UNDECODABLE,
        1,
        WITH_DLQ,
        {},
        RetryAfter(2),
    ),
    (
        "reject without a dead-letter queue",
        REJECT,
        1,
        NO_DLQ,
        {},
        RetryAfter(60, undeliverable=True, reason="rejected: not for us"),
    ),
    (
        "poison without a dead-letter queue",
        UNDECODABLE,
        1,
        NO_DLQ,
        {"poison": True},
        RetryAfter(60, undeliverable=True, reason="poison message: cannot decode"),
    ),
    (
        "limit without a dead-letter queue",
        BOOM,
        3,
        NO_DLQ,
        {},
        RetryAfter(60, undeliverable=True, reason="failed 3 times: ValueError: boom"),
    ),
]


@pytest.mark.parametrize(
    ("outcome", "receive_count", "policy", "flags", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_decide(
    outcome: BaseException | None,
    receive_count: int,
    policy: SettlePolicy,
    flags: dict[str, Any],
    expected: Action,
) -> None:
    assert decide(outcome, receive_count, policy, **flags) == expected


def test_jittered_backoff_stays_within_its_bounds() -> None:
    policy = SettlePolicy(
        qfan.Backoff(initial=1, maximum=30, jitter=5), attempts_limit=None, has_dead_letter=True
    )
    delays = {decide(BOOM, 2, policy) for _ in range(50)}
    assert all(isinstance(d, RetryAfter) and 2 <= d.delay <= 7 for d in delays)
    assert len(delays) > 1  # the jitter is real
