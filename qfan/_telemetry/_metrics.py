"""The metrics qfan records through the OpenTelemetry metrics API (names as Prometheus shows them in
README's list): counters by queue or topic, worker and outcome, histograms, and gauges read on collection.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .._exceptions import QfanError
from .._pipeline._message import Message
from .._wire._attributes import AttributeValue

if TYPE_CHECKING:
    from .._worker._worker import Worker

DESTINATION = "messaging.destination.name"
_FORGET_REQUESTS = 3600.0
_MAX_PENDING = 100_000
BACKLOG_STATES = {
    "visible": "ApproximateNumberOfMessages",
    "not_visible": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


class Instruments:
    """Every instrument, created once per :class:`~._hooks.Telemetry`."""

    def __init__(self, provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter("qfan", meter_provider=provider)
        self._sent = meter.create_counter(
            "qfan.messages.sent", "{message}", "Messages sent to a queue or published to a topic"
        )
        self._received = meter.create_counter("qfan.messages.received", "{message}", "Messages received")
        self._settled = meter.create_counter(
            "qfan.messages.settled",
            "{message}",
            "Worker settle decisions: acked, retried, dead_lettered, released",
        )
        self._receives = meter.create_counter(
            "qfan.receives", "{call}", "ReceiveMessage calls; empty=true for those that brought nothing"
        )
        self._batch = meter.create_histogram(
            "qfan.receive.batch_size",
            "{message}",
            "Messages per receive call that brought any",
            explicit_bucket_boundaries_advisory=[1, 2, 3, 5, 8, 10],
        )
        self._offloaded = meter.create_counter(
            "qfan.offload.bytes", "By", "Bytes of offloaded bodies stored (PutObject) or fetched (GetObject)"
        )
        self._duration = meter.create_histogram(
            "qfan.handler.duration", "s", "Handler run time per message (single-message handlers)"
        )
        self._age = meter.create_histogram(
            "qfan.message.age", "s", "Time from SentTimestamp to the start of processing"
        )
        self._round_trip = meter.create_histogram(
            "qfan.request.duration", "s", "Request/response round trip: request sent to reply received"
        )
        self._pending: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._backlog: dict[str, dict[str, int]] = {}
        self._workers: list[Worker] = []
        self._running: dict[str, int] = {}
        meter.create_observable_gauge(
            "qfan.queue.messages",
            [self._observe_backlog],
            "{message}",
            "Queue backlog (ApproximateNumberOfMessages*), by state: visible, not_visible, delayed",
        )
        meter.create_observable_gauge(
            "qfan.worker.in_flight",
            [self._observe_in_flight],
            "{message}",
            "Messages a worker holds (running or prefetched)",
        )
        meter.create_observable_gauge(
            "qfan.worker.prefetched",
            [self._observe_prefetched],
            "{message}",
            "Messages a worker holds that no handler runs yet",
        )

    def watch(self, worker: Worker) -> None:
        """Report this worker's holdings in the gauges."""
        if all(known is not worker for known in self._workers):
            self._workers.append(worker)

    def backlog(self, queue: str, attributes: dict[str, str]) -> None:
        """Record one read of ``queue``'s attributes for the backlog gauge."""
        self._backlog[queue] = {
            state: int(attributes.get(name, "0") or 0) for state, name in BACKLOG_STATES.items()
        }

    def sent(self, system: str, destination: str, result: str | QfanError) -> None:
        labels = {"messaging.system": system, DESTINATION: destination}
        if isinstance(result, QfanError):
            labels["error.type"] = type(result).__name__
        self._sent.add(1, labels)

    def received(self, queue: str, worker: str, messages: Sequence[Message[Any]]) -> None:
        labels = {DESTINATION: queue, "qfan.worker": worker}
        self._receives.add(1, {**labels, "empty": "true" if not messages else "false"})
        if not messages:
            return
        self._received.add(len(messages), labels)
        self._batch.record(len(messages), labels)

    def offloaded(self, operation: str, destination: str, size: int) -> None:
        self._offloaded.add(size, {DESTINATION: destination, "rpc.method": operation})

    def request_sent(self, correlation_id: AttributeValue | None, queue: str) -> None:
        if not isinstance(correlation_id, str):
            return
        now = time.monotonic()
        self._pending[correlation_id] = (now, queue)
        while self._pending:  # requests never answered are forgotten after _FORGET_REQUESTS seconds
            oldest, _ = next(iter(self._pending.values()))
            if now - oldest < _FORGET_REQUESTS and len(self._pending) <= _MAX_PENDING:
                break
            self._pending.popitem(last=False)

    def reply_received(self, correlation_id: AttributeValue) -> None:
        pending = self._pending.pop(correlation_id, None) if isinstance(correlation_id, str) else None
        if pending is not None:
            self._round_trip.record(time.monotonic() - pending[0], {DESTINATION: pending[1]})

    def started(self, message: Message[Any]) -> None:
        self._running[message.queue] = self._running.get(message.queue, 0) + 1
        if message.sent_at is not None:
            age = max(0.0, time.time() - message.sent_at.timestamp())
            self._age.record(age, {DESTINATION: message.queue})

    def finished(self, message: Message[Any], seconds: float) -> None:
        self._running[message.queue] -= 1
        self._duration.record(seconds, {DESTINATION: message.queue})

    def settled(self, message: Message[Any], worker: str, outcome: str) -> None:
        self._settled.add(1, {DESTINATION: message.queue, "qfan.worker": worker, "qfan.outcome": outcome})

    def _observe_backlog(self, _: CallbackOptions) -> Iterable[Observation]:
        for queue, states in list(self._backlog.items()):
            for state, count in states.items():
                yield Observation(count, {DESTINATION: queue, "state": state})

    def _observe_in_flight(self, _: CallbackOptions) -> Iterable[Observation]:
        for worker in self._workers:
            yield Observation(worker.stats.in_flight, {"qfan.worker": worker.name})

    def _observe_prefetched(self, _: CallbackOptions) -> Iterable[Observation]:
        for worker in self._workers:
            queues = worker.queue.consumed_levels().queues.values()
            running = sum(self._running.get(q.name, 0) for q in queues)
            yield Observation(max(0, worker.stats.in_flight - running), {"qfan.worker": worker.name})
