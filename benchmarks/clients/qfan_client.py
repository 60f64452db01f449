"""qfan, as its README shows it: ``send_many`` for bulk publishing, ``send`` from concurrent tasks (the
``qfan-send`` row: every call coalesced into batches), a worker for consuming, ``publish_many`` to a topic,
``app.request`` with ``@app.responder``, and an ``Offload`` policy for large payloads.

The ``qfan`` and ``qfan-send`` rows use the lean data path (``transport="fast"``); the ``qfan-botocore`` row
runs the very same code with ``transport="botocore"``, so the two rows compare the transports alone.
"""

from __future__ import annotations

import time
from typing import Any

from ..common import Job, Meter, Outcome, payload, percentile

UNAVAILABLE = {
    "fanout_qfan_send": "same publisher as the qfan row",
    "rpc_qfan_send": "same requester as the qfan row",
    "offload_qfan_send": "same client as the qfan row",
    "consume_qfan_send": "same consumer as the qfan row",
    "e2e_qfan_send": "same worker as the qfan row",
    "fanout_qfan_otel": "telemetry's cost is measured on publish, consume and e2e",
    "rpc_qfan_otel": "telemetry's cost is measured on publish, consume and e2e",
    "offload_qfan_otel": "telemetry's cost is measured on publish, consume and e2e",
}
_TRANSPORTS = {"qfan-botocore": "botocore"}
_IDLE = 10.0


def _app(job: Job) -> Any:
    import qfan

    if job.client == "qfan-otel":
        _install_otel()
    transport = _TRANSPORTS.get(job.client, "fast")
    return qfan.App("bench", endpoint_url=job.endpoint_url, region=job.region, transport=transport)


def _install_otel() -> None:
    """An application's usual SDK set-up (batching span processor, periodic metric reader), exporting
    nowhere: what qfan's telemetry costs the client, without any exporter's own cost."""
    from collections.abc import Sequence

    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        MetricsData,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NoSpans(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class NoMetrics(MetricExporter):
        def __init__(self) -> None:
            super().__init__(preferred_temporality={}, preferred_aggregation={})

        def export(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_: Any
        ) -> MetricExportResult:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
            pass

    if type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(NoSpans()))
        trace.set_tracer_provider(provider)
        reader = PeriodicExportingMetricReader(NoMetrics(), export_interval_millis=10_000)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


async def _send_concurrently(queue: Any, job: Job) -> None:
    """``job.concurrency`` producer tasks each calling ``send`` once per message."""
    import anyio

    position = 0

    async def producer() -> None:
        nonlocal position
        while position < job.messages:
            bid = position
            position += 1
            await queue.send(payload(bid, job.body_bytes))

    async with anyio.create_task_group() as tg:
        for _ in range(job.concurrency * 4):  # enough concurrent callers to fill batches of 10
            tg.start_soon(producer)


def publish(job: Job) -> Outcome:
    import anyio

    async def main() -> Outcome:
        app = _app(job)
        queue = app.queue(job.queue_name)
        async with app:
            with Meter() as meter:
                if job.client == "qfan-send":
                    await _send_concurrently(queue, job)
                else:
                    await queue.send_many([payload(i, job.body_bytes) for i in range(job.messages)])
        return meter.outcome(job.messages)

    return anyio.run(main)


def _work(job: Job, *, preload: bool) -> Outcome:
    """Run a worker until it has handled (and deleted) ``job.messages`` messages; publish meanwhile unless
    the backlog was ``preload``-ed before the measured phase."""
    import anyio

    async def main() -> Outcome:
        app = _app(job)
        queue = app.queue(job.queue_name)
        seen: list[int] = []
        latencies: list[float] = []

        concurrency = job.concurrency * 2
        # Far from SQS a worker's throughput is about its held messages over a receive's round trip
        # (README, Performance): there it holds as many as the aiobotocore loop (its tasks x 10).
        prefetch = max(10, job.concurrency * 10 - concurrency) if job.latency else 10

        @app.worker(queue, concurrency=concurrency, prefetch=prefetch, receive_wait=1)
        async def handle(body: dict[str, Any]) -> None:
            seen.append(body["bid"])
            latencies.append((time.time() - body["t"]) * 1000)

        async with app:
            if preload:
                await queue.send_many([payload(i, job.body_bytes) for i in range(job.messages)])
            (stats,) = app.stats().values()
            with Meter() as meter:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lambda: app.run(stats_interval=None))
                    if not preload:
                        tg.start_soon(
                            queue.send_many, [payload(i, job.body_bytes) for i in range(job.messages)]
                        )
                    last, done = time.monotonic(), 0
                    while stats.succeeded < job.messages and time.monotonic() - last < _IDLE:
                        await anyio.sleep(0.002)
                        if stats.succeeded != done:
                            last, done = time.monotonic(), stats.succeeded
                    meter.mark()  # every message handled and its delete acknowledged by SQS
                    app.stop()
        extra = {} if preload else {"latencies_ms": {"e2e": latencies}}
        return meter.outcome(job.messages, seen, **extra)

    return anyio.run(main)


def consume(job: Job) -> Outcome:
    return _work(job, preload=True)


def e2e(job: Job) -> Outcome:
    return _work(job, preload=False)


def fanout(job: Job) -> Outcome:
    import anyio

    async def main() -> Outcome:
        app = _app(job)
        topic = app.topic(job.topic_arn.rpartition(":")[2])
        async with app:
            with Meter() as meter:
                await topic.publish_many([payload(i, job.body_bytes) for i in range(job.messages)])
        return meter.outcome(job.messages)

    return anyio.run(main)


def rpc(job: Job) -> Outcome:
    """``app.request`` against an ``@app.responder`` in the same process, at each concurrency in turn."""
    import anyio

    async def main() -> Outcome:
        app = _app(job)
        queue = app.queue(job.queue_name)
        latencies: dict[str, list[float]] = {}
        answered: list[int] = []

        @app.responder(queue, concurrency=32)
        async def answer(body: dict[str, Any]) -> dict[str, Any]:
            return body

        total = 0
        async with app, anyio.create_task_group() as tg:
            tg.start_soon(lambda: app.run(stats_interval=None))
            with Meter() as meter:
                per_level = max(1, job.messages // max(1, len(job.rpc_concurrencies)))
                for concurrency in job.rpc_concurrencies:
                    samples: list[float] = []
                    latencies[f"c={concurrency}"] = samples
                    pending = list(range(total, total + per_level))
                    total += per_level

                    async def requester(pending: list[int] = pending, samples: list[float] = samples) -> None:
                        while pending:
                            bid = pending.pop()
                            started = time.perf_counter()
                            reply = await app.request(queue, payload(bid, job.body_bytes), timeout=30)
                            samples.append((time.perf_counter() - started) * 1000)
                            answered.append(reply["bid"])

                    async with anyio.create_task_group() as requesters:
                        for _ in range(concurrency):
                            requesters.start_soon(requester)
            app.stop()
        notes = "; ".join(
            f"c={c.split('=')[1]}: p50 {percentile(s, 50):.1f} ms p99 {percentile(s, 99):.1f} ms"
            for c, s in latencies.items()
            if s
        )
        return meter.outcome(total, answered, latencies_ms=latencies, notes=notes)

    return anyio.run(main)


def offload(job: Job) -> Outcome:
    """Send through S3 above the AWS clients' 256 KiB default threshold, then receive, read and ack."""
    import anyio

    import qfan

    async def main() -> Outcome:
        app = _app(job)
        queue = app.queue(job.queue_name, offload=qfan.Offload(job.bucket, threshold=262_144))
        seen: list[int] = []
        async with app:
            with Meter() as meter:
                await queue.send_many([payload(i, job.body_bytes) for i in range(job.messages)])
                async with queue.consume(prefetch=10, wait=1) as messages:
                    async for message in messages:
                        seen.append(message.body["bid"])
                        await message.ack()
                        if len(set(seen)) >= job.messages:
                            break
        return meter.outcome(job.messages, seen, notes="S3 offload (put + pointer, get, delete object)")

    return anyio.run(main)
