"""A topology for ``qfan declare`` tests; names come from QFAN_TEST_PREFIX so each test gets its own."""

import os

import qfan

prefix = os.environ.get("QFAN_TEST_PREFIX", "fanout")
app = qfan.App("fanout-app")
events = app.topic(f"{prefix}-events")
first = app.queue(f"{prefix}-first", dead_letter=app.queue(f"{prefix}-first-dlq"))
second = app.queue(f"{prefix}-second", visibility_timeout=40)
app.subscribe(events, first, filter_policy={"kind": ["a"]})
app.subscribe(events, second, raw=False)
