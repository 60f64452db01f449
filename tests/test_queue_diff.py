"""The one decision declare and plan share: how a live queue differs from its declaration (pure, no I/O)."""

from __future__ import annotations

import pytest

from qfan._resources._queue_options import QueueOptions, queue_diff

STANDARD = {"VisibilityTimeout": "30", "FifoQueue": "false"}

CASES = [
    # (on_conflict, declared tags, wanted, existing, live tags) -> action, conflicting keys
    ("error", {}, {"VisibilityTimeout": "30"}, STANDARD, {}, "unchanged", set()),
    ("error", {}, {"VisibilityTimeout": "60"}, STANDARD, {}, "conflict", {"VisibilityTimeout"}),
    ("update", {}, {"VisibilityTimeout": "60"}, STANDARD, {}, "update", set()),
    ("update", {}, {"FifoQueue": "true", "VisibilityTimeout": "60"}, STANDARD, {}, "conflict", {"FifoQueue"}),
    ("error", {"team": "a"}, {"VisibilityTimeout": "30"}, STANDARD, {"team": "b"}, "conflict", {"tag:team"}),
    ("update", {"team": "a"}, {"VisibilityTimeout": "30"}, STANDARD, {}, "update", set()),
    ("error", {"team": "a"}, {}, STANDARD, {"team": "a", "extra": "fine"}, "unchanged", set()),
]


@pytest.mark.parametrize(
    ("on_conflict", "tags", "wanted", "existing", "live", "action", "conflicting"), CASES
)
def test_queue_diff_decides_once_for_declare_and_plan(
    on_conflict, tags, wanted, existing, live, action, conflicting
):
    options = QueueOptions(name="orders", tags=tags, on_conflict=on_conflict)
    diff = queue_diff(options, wanted, existing, live)
    assert diff.action == action
    assert set(diff.conflicting) == conflicting
    if action == "update":
        assert diff.attributes or diff.tags
