"""The pure parts of flow control, long delays and idempotency records, as tables with an injected clock."""

from datetime import UTC, datetime, timedelta

import pytest

import qfan
from qfan._pipeline._delays import LongDelays
from qfan._worker._idempotency import recheck_delay


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- token bucket: (seconds to advance the clock, then take) -> seconds the caller must wait --

RATE_TABLE: list[tuple[str, float, int, list[tuple[float, float]]]] = [
    ("a full burst starts at once", 2, 3, [(0, 0), (0, 0), (0, 0)]),
    ("past the burst, reservations queue up", 2, 1, [(0, 0), (0, 0.5), (0, 1.0), (0, 1.5)]),
    ("time refills tokens", 2, 1, [(0, 0), (0.5, 0), (0.25, 0.25)]),
    ("a quiet spell refills up to the burst only", 10, 2, [(100, 0), (0, 0), (0, 0.1)]),
    ("waiting callers are paced one per 1/rate", 4, 2, [(0, 0), (0, 0), (0, 0.25), (0, 0.5), (1.0, 0)]),
]


@pytest.mark.parametrize(
    ("rate", "burst", "steps"), [r[1:] for r in RATE_TABLE], ids=[r[0] for r in RATE_TABLE]
)
def test_token_bucket(rate: float, burst: int, steps: list[tuple[float, float]]) -> None:
    clock = Clock()
    bucket = qfan.RateLimit(rate, burst, clock=clock)
    waits = []
    for advance, _ in steps:
        clock.now += advance
        waits.append(round(bucket.take(), 6))
    assert waits == [wait for _, wait in steps]


def test_rate_limit_holds_over_any_second() -> None:
    """However callers arrive, starts (take time + wait) never exceed burst + rate in any 1 s window."""
    clock = Clock()
    bucket = qfan.RateLimit(5, 2, clock=clock)
    starts = []
    for i in range(200):
        clock.now += 0.013 * (i % 7)
        starts.append(clock.now + bucket.take())
    for first in starts:
        assert sum(first <= s < first + 1 for s in starts) <= 5 + 2


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 1), (1, 0), (1, 1.5), (1, True)])
def test_rate_limit_rejects_bad_settings(per_second: float, burst: int) -> None:
    with pytest.raises(qfan.ConfigError):
        qfan.RateLimit(per_second, burst)


# -- circuit breaker: events at times -> (state, what start() answers) ---------------------------------------

BREAKER_TABLE: list[tuple[str, list[tuple[float, str]], str, float | None]] = [
    ("closed lets handlers start", [], "closed", None),
    ("failures below the threshold keep it closed", [(0, "fail"), (1, "fail")], "closed", None),
    ("the threshold within the window opens it", [(0, "fail"), (1, "fail"), (2, "fail")], "open", 10.0),
    ("old failures slide out of the window", [(0, "fail"), (1, "fail"), (6, "fail")], "closed", None),
    (
        "successes do not reset a closed window",
        [(0, "fail"), (1, "ok"), (2, "fail"), (3, "fail")],
        "open",
        10.0,
    ),
    ("open for the rest of its cooldown", [(0, "fail"), (0, "fail"), (0, "fail"), (4, "")], "open", 6.0),
    (
        "after the cooldown: half-open, one probe",
        [(0, "fail"), (0, "fail"), (0, "fail"), (10, "")],
        "half_open",
        None,
    ),
    (
        "a running probe makes others wait",
        [(0, "fail"), (0, "fail"), (0, "fail"), (10, "start")],
        "half_open",
        0.0,
    ),
    (
        "the probe succeeding closes it",
        [(0, "fail"), (0, "fail"), (0, "fail"), (10, "start"), (11, "ok")],
        "closed",
        None,
    ),
    (
        "the probe failing opens it again",
        [(0, "fail"), (0, "fail"), (0, "fail"), (10, "start"), (11, "fail")],
        "open",
        10.0,
    ),
    (
        "a run that started before it opened does not extend the cooldown",
        [(0, "fail"), (0, "fail"), (0, "fail"), (5, "fail")],
        "open",
        5.0,
    ),
]


@pytest.mark.parametrize(
    ("events", "state", "answer"), [r[1:] for r in BREAKER_TABLE], ids=[r[0] for r in BREAKER_TABLE]
)
def test_circuit_breaker(events: list[tuple[float, str]], state: str, answer: float | None) -> None:
    clock = Clock(0)
    breaker = qfan.CircuitBreaker(failures=3, window=5, cooldown=10, clock=clock)
    for at, event in events:
        clock.now = at
        if event == "fail":
            breaker.failed()
        elif event == "ok":
            breaker.succeeded()
        elif event == "start":
            assert breaker.start() is None
    assert breaker.start() == answer
    assert breaker.state == state


def test_breaker_reports_when_a_failure_trips_it() -> None:
    clock = Clock(0)
    breaker = qfan.CircuitBreaker(failures=2, window=5, cooldown=10, clock=clock)
    assert breaker.failed() is False
    assert breaker.failed() is True  # this failure tripped it: its message is given back, not counted
    assert breaker.blocked_for() == 10
    assert breaker.opened == 1


# -- long delays: (delay, delay_until offset) -> (DelaySeconds of the first hop, due time) ------------------

NOW = 1_700_000_000.0
DELAY_TABLE: list[tuple[str, int, object, float | None, tuple[int | None, float | None]]] = [
    ("no delay", 900, None, None, (None, None)),
    ("within one hop: plain DelaySeconds", 900, 600, None, (600, None)),
    ("exactly one hop", 900, 900, None, (900, None)),
    ("a timedelta within one hop", 900, timedelta(seconds=90.5), None, (91, None)),
    ("six hours: one hop now, due later", 900, timedelta(hours=6), None, (900, NOW + 21_600)),
    ("a short hop setting", 60, 2400, None, (60, NOW + 2400)),
    ("until a time past one hop", 900, None, 3600.0, (900, NOW + 3600)),
    ("until a time within one hop", 900, None, 30.0, (30, None)),
    ("until a time already past", 900, None, -5.0, (0, None)),
]


@pytest.mark.parametrize(
    ("hop", "delay", "until", "expected"), [r[1:] for r in DELAY_TABLE], ids=[r[0] for r in DELAY_TABLE]
)
def test_long_delay_schedule(
    hop: int, delay: object, until: float | None, expected: tuple[int | None, float | None]
) -> None:
    delays = LongDelays(hop=hop, clock=lambda: NOW)
    delay_until = None if until is None else datetime.fromtimestamp(NOW + until, UTC)
    assert delays.schedule(delay, delay_until) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("due_in", "hop", "expected"),
    [(-1, 900, None), (0, 900, None), (0.2, 900, 1), (300, 900, 300), (2400, 900, 900), (2400, 60, 60)],
)
def test_long_delay_next_hop(due_in: float, hop: int, expected: int | None) -> None:
    assert LongDelays(hop=hop, clock=lambda: NOW).next_hop(NOW + due_in) == expected


@pytest.mark.parametrize(
    ("delay", "until"),
    [(-1, None), (1.5, None), (True, None), (5, datetime.now(UTC)), (None, datetime(2030, 1, 1))],
)
def test_long_delay_rejects(delay: object, until: datetime | None) -> None:
    with pytest.raises(qfan.ConfigError):
        LongDelays().schedule(delay, until)  # type: ignore[arg-type]


# -- the memory idempotency store: claims, leases, results ---------------------------------------------------


async def test_memory_store_claims_leases_and_results() -> None:
    clock = Clock(0)
    store = qfan.MemoryIdempotencyStore(clock=clock)
    assert await store.claim("k", "run-1", lease=10, ttl=100) is None  # taken
    held = await store.claim("k", "run-2", lease=10, ttl=100)
    assert held is not None
    assert (held.state, held.lease_until) == ("in_progress", 10)
    clock.now = 11  # run-1 crashed: its lease ran out
    assert await store.claim("k", "run-2", lease=10, ttl=100) is None
    assert await store.complete("k", "run-1", b"1", ttl=100) is False  # too late: run-2 holds it
    assert await store.complete("k", "run-2", b'"done"', ttl=100) is True
    done = await store.claim("k", "run-3", lease=10, ttl=100)
    assert done is not None
    assert (done.state, done.result) == ("completed", b'"done"')
    clock.now = 200  # the record expired
    assert await store.claim("k", "run-4", lease=10, ttl=100) is None
    await store.release("k", "run-4")
    assert await store.claim("k", "run-5", lease=10, ttl=100) is None


# -- a delivery that finds its key in progress: (lease left, run's age, receive count, attempt limit) -> wait

RECHECK_TABLE: list[tuple[str, float, float, int, int | None, int]] = [
    ("two copies at once: look again in a second", 299.6, 0.4, 1, None, 1),
    ("then after as long as the run has lasted", 298.9, 1.1, 2, None, 2),
    ("the waits double with the run's age", 296.8, 3.2, 3, None, 4),
    ("three quick looks, then the rest of the lease", 292.6, 7.4, 4, None, 293),
    ("an attempt limit of 5 leaves two quick looks", 296.8, 3.2, 3, 5, 297),
    ("an attempt limit of 3 leaves one", 298.9, 1.1, 2, 3, 299),
    ("an attempt limit of 2 leaves none", 299.6, 0.4, 1, 2, 300),
    ("a long limit still three", 292.6, 7.4, 4, 100, 293),
    ("never past the lease", 3, 297, 1, None, 3),
    ("a lease already run out: at once (1 s, SQS's least)", -5, 305, 1, None, 1),
    ("a lease beyond SQS's 12 h: 12 h", 90_000, 10, 4, None, 43_200),
]


@pytest.mark.parametrize(
    ("remaining", "elapsed", "receive_count", "limit", "expected"),
    [row[1:] for row in RECHECK_TABLE],
    ids=[row[0] for row in RECHECK_TABLE],
)
def test_recheck_delay(
    remaining: float, elapsed: float, receive_count: int, limit: int | None, expected: int
) -> None:
    assert recheck_delay(remaining, elapsed, receive_count, limit) == expected
