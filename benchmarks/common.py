"""What the harness and the client processes share: the job spec, the payloads, the meter, the result.

Stdlib only, so that importing it adds nothing to a client process's memory or CPU.
"""

from __future__ import annotations

import json
import re
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

PAD = "x"
_BID = re.compile(r'"bid":\s*(\d+)')


LATENCY = {"e2e-20ms": 0.02}
"""Scenarios run through the latency proxy: seconds it adds each way."""


@dataclass
class Job:
    """One cell of the table: a client running a scenario against prepared resources."""

    client: str
    scenario: str
    endpoint_url: str | None
    region: str
    messages: int
    body_bytes: int
    concurrency: int
    queue_url: str = ""
    queue_name: str = ""
    topic_arn: str = ""
    bucket: str = ""
    reply_queue_url: str = ""
    rpc_concurrencies: list[int] = field(default_factory=list)
    latency: float = 0.0  # seconds the latency proxy adds each way (0: talking to the server directly)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


@dataclass
class Outcome:
    """What a client process reports: the measured phase, and what it saw (ids) for verification."""

    status: str = "ok"  # ok | n/a | error
    reason: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    messages: int = 0
    ids: list[int] | None = None
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    notes: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls(**json.loads(text))


class NotAvailable(Exception):
    """Raised by a client that cannot run a scenario; the message is the reason shown in the table."""


def payload(bid: int, size: int) -> dict[str, Any]:
    """A JSON-able body of about ``size`` bytes carrying its benchmark id and its send time."""
    sent = time.time()
    # json.dumps(body) without calling it (it is in every client's measured CPU): ints and floats are
    # written as their repr, the pad is ASCII.
    missing = size - len(f'{{"bid": {bid}, "t": {sent!r}, "pad": ""}}')
    return {"bid": bid, "t": sent, "pad": PAD * max(0, missing)}


def body_text(bid: int, size: int) -> str:
    """``payload`` as JSON text (for the clients that send strings)."""
    return json.dumps(payload(bid, size))


def ids_in(text: str) -> list[int]:
    """Benchmark ids found in a message body of any library's envelope (they all carry our JSON)."""
    return [int(m) for m in _BID.findall(text)]


def sent_at(text: str) -> float | None:
    """The send time recorded in a body, if it carries one."""
    match = re.search(r'"t":\s*([0-9.]+)', text)
    return float(match.group(1)) if match else None


class Meter:
    """Wall time and this process's user+sys CPU over the measured phase (``with meter: ...``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._start = 0.0
        self._cpu = 0.0
        self._marked = False

    @staticmethod
    def _process_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> Meter:
        self._start, self._cpu = time.perf_counter(), self._process_cpu()
        self._marked = False
        return self

    def mark(self) -> None:
        """End the measured phase now (the first call wins); leaving the block later changes nothing.

        Consumers call it when the last message is settled, so that the idle long polls of the other
        receivers, which then wait on an empty queue, are not counted.
        """
        if not self._marked:
            self._marked = True
            self.seconds = time.perf_counter() - self._start
            self.cpu_seconds = self._process_cpu() - self._cpu

    def __exit__(self, *exc: object) -> None:
        self.mark()

    def outcome(self, messages: int, ids: list[int] | None = None, **extra: Any) -> Outcome:
        return Outcome(
            seconds=self.seconds, cpu_seconds=self.cpu_seconds, messages=messages, ids=ids, **extra
        )


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
