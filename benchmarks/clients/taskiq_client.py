"""taskiq with the taskiq-aio-sqs broker, as their READMEs show them: ``task.kiq(...)`` from
``job.concurrency`` concurrent tasks to publish, taskiq's ``Receiver`` (what ``taskiq worker`` runs) to
consume; request/response is taskiq's own: ``kiq`` then ``wait_result`` from an ``S3Backend``.

The broker's optional send batching (``enable_batching=True``) is off: in taskiq-aio-sqs 2.1.1 a
``shutdown()`` right after the last ``kiq`` hangs or drops the buffered messages (seen on fauxqs: 2,000
kiq'd, 0 in the queue), and there is no public flush to wait for instead.

The only addition is a broker subclass that counts completed acks (deletes), so that the measured phase
ends when the last message is deleted, as for the other clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..common import Job, Meter, Outcome, payload, percentile

UNAVAILABLE = {
    "fanout": "taskiq-aio-sqs has no SNS support",
    "offload": "taskiq-aio-sqs offloads to S3 only above SQS's 1 MiB limit; 300 KiB goes inline",
}
_IDLE = 10.0


def _broker(job: Job, *, batching: bool = False, **extra: Any) -> Any:
    from taskiq_aio_sqs import SQSBroker

    class CountingBroker(SQSBroker):  # type: ignore[misc]
        acked = 0

        def build_ack_fnx(self, *args: Any, **kwargs: Any) -> Any:
            ack = super().build_ack_fnx(*args, **kwargs)

            async def counted() -> None:
                await ack()
                self.acked += 1

            counted.metadata = ack.metadata  # type: ignore[attr-defined]
            return counted

    options: dict[str, Any] = (
        {"enable_batching": True, "batch_size": 10, "batch_timeout": 0.1} if batching else {}
    )
    return CountingBroker(
        endpoint_url=job.endpoint_url,
        sqs_queue_name=job.queue_name,
        region_name=job.region,
        max_number_of_messages=10,
        wait_time_seconds=1,
        **options,
        **extra,
    )


def _task(broker: Any, handled: list[int], latencies: list[float] | None = None) -> Any:
    @broker.task(task_name="bench")
    async def bench(body: dict[str, Any]) -> int:
        handled.append(body["bid"])
        if latencies is not None:
            latencies.append((time.time() - body["t"]) * 1000)
        return int(body["bid"])

    return bench


async def _kiq_all(task: Any, job: Job) -> None:
    position = 0

    async def producer() -> None:
        nonlocal position
        while position < job.messages:
            bid = position
            position += 1
            await task.kiq(payload(bid, job.body_bytes))

    await asyncio.gather(*(producer() for _ in range(job.concurrency)))


async def _publish_all(job: Job) -> None:
    """A producer broker of its own: startup, kiq everything, shutdown."""
    broker = _broker(job)
    task = _task(broker, [])
    await broker.startup()
    await _kiq_all(task, job)
    await broker.shutdown()


async def _receive_until_done(broker: Any, job: Job, meter: Meter) -> None:
    from taskiq.receiver import Receiver

    broker.is_worker_process = True
    finish = asyncio.Event()
    receiver = Receiver(broker, max_async_tasks=job.concurrency * 2)
    listening = asyncio.create_task(receiver.listen(finish))
    last, done = time.monotonic(), 0
    while broker.acked < job.messages and time.monotonic() - last < _IDLE:
        await asyncio.sleep(0.002)
        if broker.acked != done:
            last, done = time.monotonic(), broker.acked
    meter.mark()
    finish.set()
    await listening
    await broker.shutdown()


def publish(job: Job) -> Outcome:
    async def main() -> Outcome:
        with Meter() as meter:
            await _publish_all(job)
        return meter.outcome(job.messages)

    return asyncio.run(main())


def consume(job: Job) -> Outcome:
    async def main() -> Outcome:
        await _publish_all(job)  # the backlog (not measured)
        handled: list[int] = []
        broker = _broker(job)
        _task(broker, handled)
        with Meter() as meter:
            await _receive_until_done(broker, job, meter)
        return meter.outcome(job.messages, handled)

    return asyncio.run(main())


def e2e(job: Job) -> Outcome:
    async def main() -> Outcome:
        handled: list[int] = []
        latencies: list[float] = []
        broker = _broker(job)
        _task(broker, handled, latencies)
        with Meter() as meter:
            await asyncio.gather(_publish_all(job), _receive_until_done(broker, job, meter))
        return meter.outcome(job.messages, handled, latencies_ms={"e2e": latencies})

    return asyncio.run(main())


def rpc(job: Job) -> Outcome:
    """``await (await task.kiq(body)).wait_result()`` with the worker (a Receiver) in the same process."""

    async def main() -> Outcome:
        from taskiq.receiver import Receiver
        from taskiq_aio_sqs import S3Backend

        handled: list[int] = []
        answered: list[int] = []
        latencies: dict[str, list[float]] = {}
        backend = S3Backend(bucket_name=job.bucket, endpoint_url=job.endpoint_url, region_name=job.region)
        worker = _broker(job, batching=False).with_result_backend(backend)
        _task(worker, handled)
        worker.is_worker_process = True
        client = _broker(job, batching=False).with_result_backend(backend)
        task = _task(client, [])
        await client.startup()
        finish = asyncio.Event()
        listening = asyncio.create_task(Receiver(worker, max_async_tasks=64).listen(finish))
        total = 0
        with Meter() as meter:
            per_level = max(1, job.messages // max(1, len(job.rpc_concurrencies)))
            for concurrency in job.rpc_concurrencies:
                samples: list[float] = latencies.setdefault(f"c={concurrency}", [])
                pending = list(range(total, total + per_level))
                total += per_level

                async def requester(pending: list[int] = pending, samples: list[float] = samples) -> None:
                    while pending:
                        started = time.perf_counter()
                        sent = await task.kiq(payload(pending.pop(), job.body_bytes))
                        result = await sent.wait_result(check_interval=0.005, timeout=30)
                        samples.append((time.perf_counter() - started) * 1000)
                        answered.append(result.return_value)

                await asyncio.gather(*(requester() for _ in range(concurrency)))
        finish.set()
        await listening
        await client.shutdown()
        await worker.shutdown()
        notes = "; ".join(f"{name}: p50 {percentile(s, 50):.1f} ms" for name, s in latencies.items() if s)
        return meter.outcome(total, answered, latencies_ms=latencies, notes=notes)

    return asyncio.run(main())
