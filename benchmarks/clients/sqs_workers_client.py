"""sqs-workers (sync, boto3) as its README shows it: ``add_job`` inside ``queue.add_batch()`` to publish,
``process_batch`` to consume (receive 10, run each, delete the batch). JSON codec, so bodies are readable.
boto3 finds the emulator through ``AWS_ENDPOINT_URL`` (sqs-workers takes no endpoint argument)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..common import Job, Meter, Outcome, payload

UNAVAILABLE = {
    "fanout": "sqs-workers has no SNS support",
    "rpc": "sqs-workers has no request/response",
    "offload": "sqs-workers has no S3 offload",
}
_IDLE = 10.0


def _queue(job: Job, handled: list[int] | None = None, latencies: list[float] | None = None) -> Any:
    import boto3
    from sqs_workers import SQSEnv

    if job.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = job.endpoint_url
    env = SQSEnv(session=boto3.Session(region_name=job.region), codec="json")
    queue = env.queue(job.queue_name)

    @queue.processor("bench")
    def bench(bid: int, t: float, pad: str) -> None:
        if handled is not None:
            handled.append(bid)
        if latencies is not None:
            latencies.append((time.time() - t) * 1000)

    return queue


def _add_all(queue: Any, job: Job) -> None:
    with queue.add_batch():
        for i in range(job.messages):
            queue.add_job("bench", **payload(i, job.body_bytes))


def _process(queue: Any, job: Job, handled: list[int], meter: Meter) -> None:
    last = time.monotonic()
    while len(set(handled)) < job.messages and time.monotonic() - last < _IDLE:
        if queue.process_batch(wait_seconds=1).total_count():
            last = time.monotonic()
    meter.mark()


def publish(job: Job) -> Outcome:
    queue = _queue(job)
    with Meter() as meter:
        _add_all(queue, job)
    return meter.outcome(job.messages)


def consume(job: Job) -> Outcome:
    handled: list[int] = []
    queue = _queue(job, handled)
    _add_all(queue, job)  # the backlog (not measured)
    with Meter() as meter:
        _process(queue, job, handled, meter)
    return meter.outcome(job.messages, handled)


def e2e(job: Job) -> Outcome:
    handled: list[int] = []
    latencies: list[float] = []
    consumer = _queue(job, handled, latencies)
    producer = _queue(job)  # its own SQSEnv: boto3 resources are not shared between threads
    with Meter() as meter:
        publisher = threading.Thread(target=_add_all, args=(producer, job))
        publisher.start()
        _process(consumer, job, handled, meter)
        publisher.join()
    return meter.outcome(job.messages, handled, latencies_ms={"e2e": latencies})
