"""qfan, as its README shows it: ``send_many`` for bulk publishing, ``send`` from concurrent tasks (the
``qfan-send`` row: every call coalesced into batches), and a worker for consuming.

When a scenario lands in qfan (SNS topics, request/response, S3 offload), its implementation is one
function here named after the scenario; until then ``UNAVAILABLE`` says why the cell is empty.
"""

from __future__ import annotations

import time
from typing import Any

from ..common import Job, Meter, Outcome, payload

UNAVAILABLE = {
    "fanout": "not available in this qfan version: SNS topics are not implemented yet",
    "rpc": "not available in this qfan version: request/response is not implemented yet",
    "offload": "not available in this qfan version: S3 offload is being built (branch offload)",
    "consume_qfan_send": "same consumer as the qfan row",
    "e2e_qfan_send": "same worker as the qfan row",
}
_IDLE = 10.0


def _app(job: Job) -> Any:
    import qfan

    return qfan.App("bench", endpoint_url=job.endpoint_url, region=job.region)


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

        @app.worker(queue, concurrency=job.concurrency * 2, receive_wait=1)
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
