"""aiobotocore by hand, done well: batches of 10 and ``job.concurrency`` concurrent tasks on one client.
This is the lean baseline qfan is built on; qfan's overhead is the difference between the two rows."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..common import Job, Meter, Outcome, body_text, percentile

UNAVAILABLE = {"offload": "aiobotocore has no S3 offload of its own (see extended-client and the inline row)"}
_IDLE = 10.0


@asynccontextmanager
async def _client(job: Job, service: str = "sqs") -> AsyncIterator[Any]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(max_pool_connections=max(64, job.concurrency * 2))
    async with get_session().create_client(
        service, region_name=job.region, endpoint_url=job.endpoint_url, config=config
    ) as client:
        yield client


async def _send_all(sqs: Any, job: Job) -> None:
    batches = [list(range(i, min(i + 10, job.messages))) for i in range(0, job.messages, 10)]
    position = 0

    async def sender() -> None:
        nonlocal position
        while position < len(batches):
            batch = batches[position]
            position += 1
            entries = [
                {"Id": str(n), "MessageBody": body_text(i, job.body_bytes)} for n, i in enumerate(batch)
            ]
            response = await sqs.send_message_batch(QueueUrl=job.queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SendMessageBatch failed entries: {response['Failed']}")

    await asyncio.gather(*(sender() for _ in range(job.concurrency)))


async def _consume_all(
    sqs: Any, job: Job, seen: list[int], meter: Meter, latencies: list[float] | None = None
) -> None:
    distinct: set[int] = set()
    last = time.monotonic()

    async def receiver() -> None:
        nonlocal last
        while len(distinct) < job.messages and time.monotonic() - last < _IDLE:
            response = await sqs.receive_message(
                QueueUrl=job.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = response.get("Messages", [])
            if not messages:
                continue
            last = time.monotonic()
            for message in messages:
                body = json.loads(message["Body"])
                seen.append(body["bid"])
                distinct.add(body["bid"])
                if latencies is not None:
                    latencies.append((time.time() - body["t"]) * 1000)
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            await sqs.delete_message_batch(QueueUrl=job.queue_url, Entries=entries)
            if len(distinct) >= job.messages:
                meter.mark()

    await asyncio.gather(*(receiver() for _ in range(job.concurrency)))


def publish(job: Job) -> Outcome:
    async def main() -> Outcome:
        async with _client(job) as sqs:
            with Meter() as meter:
                await _send_all(sqs, job)
        return meter.outcome(job.messages)

    return asyncio.run(main())


def consume(job: Job) -> Outcome:
    async def main() -> Outcome:
        seen: list[int] = []
        async with _client(job) as sqs:
            await _send_all(sqs, job)
            with Meter() as meter:
                await _consume_all(sqs, job, seen, meter)
        return meter.outcome(job.messages, seen)

    return asyncio.run(main())


def e2e(job: Job) -> Outcome:
    async def main() -> Outcome:
        seen: list[int] = []
        latencies: list[float] = []
        async with _client(job) as sqs:
            with Meter() as meter:
                await asyncio.gather(_send_all(sqs, job), _consume_all(sqs, job, seen, meter, latencies))
        return meter.outcome(job.messages, seen, latencies_ms={"e2e": latencies})

    return asyncio.run(main())


def fanout(job: Job) -> Outcome:
    async def main() -> Outcome:
        async with _client(job, "sns") as sns:
            batches = [list(range(i, min(i + 10, job.messages))) for i in range(0, job.messages, 10)]
            position = 0

            async def publisher() -> None:
                nonlocal position
                while position < len(batches):
                    batch = batches[position]
                    position += 1
                    entries = [
                        {"Id": str(n), "Message": body_text(i, job.body_bytes)} for n, i in enumerate(batch)
                    ]
                    response = await sns.publish_batch(
                        TopicArn=job.topic_arn, PublishBatchRequestEntries=entries
                    )
                    if response.get("Failed"):
                        raise RuntimeError(f"PublishBatch failed entries: {response['Failed']}")

            with Meter() as meter:
                await asyncio.gather(*(publisher() for _ in range(job.concurrency)))
        return meter.outcome(job.messages)

    return asyncio.run(main())


def rpc(job: Job) -> Outcome:
    """Request/response by hand: requests carry a correlation id and a reply queue; one responder loop
    answers in batches; one dispatcher loop resolves the waiting requesters' futures."""

    async def main() -> Outcome:
        latencies: dict[str, list[float]] = {}
        answered: list[int] = []
        async with _client(job) as sqs:
            waiting: dict[str, asyncio.Future[str]] = {}
            stop = asyncio.Event()

            async def responder() -> None:
                while not stop.is_set():
                    response = await sqs.receive_message(
                        QueueUrl=job.queue_url,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=1,
                        MessageAttributeNames=["All"],
                    )
                    messages = response.get("Messages", [])
                    if not messages:
                        continue
                    replies = [
                        {
                            "Id": str(n),
                            "MessageBody": m["Body"],
                            "MessageAttributes": {
                                "correlation-id": m["MessageAttributes"]["correlation-id"],
                            },
                        }
                        for n, m in enumerate(messages)
                    ]
                    await sqs.send_message_batch(QueueUrl=job.reply_queue_url, Entries=replies)
                    deletes = [
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
                    ]
                    await sqs.delete_message_batch(QueueUrl=job.queue_url, Entries=deletes)

            async def dispatcher() -> None:
                while not stop.is_set():
                    response = await sqs.receive_message(
                        QueueUrl=job.reply_queue_url,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=1,
                        MessageAttributeNames=["All"],
                    )
                    messages = response.get("Messages", [])
                    for m in messages:
                        future = waiting.pop(m["MessageAttributes"]["correlation-id"]["StringValue"], None)
                        if future is not None and not future.done():
                            future.set_result(m["Body"])
                    if messages:
                        deletes = [
                            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                            for n, m in enumerate(messages)
                        ]
                        await sqs.delete_message_batch(QueueUrl=job.reply_queue_url, Entries=deletes)

            async def request(bid: int, samples: list[float]) -> None:
                correlation = uuid.uuid4().hex
                future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                waiting[correlation] = future
                started = time.perf_counter()
                await sqs.send_message(
                    QueueUrl=job.queue_url,
                    MessageBody=body_text(bid, job.body_bytes),
                    MessageAttributes={"correlation-id": {"DataType": "String", "StringValue": correlation}},
                )
                reply = await asyncio.wait_for(future, 30)
                samples.append((time.perf_counter() - started) * 1000)
                answered.extend(json.loads(reply)["bid"] for _ in (0,))

            background = [asyncio.create_task(responder()), asyncio.create_task(dispatcher())]
            total = 0
            with Meter() as meter:
                per_level = max(1, job.messages // max(1, len(job.rpc_concurrencies)))
                for concurrency in job.rpc_concurrencies:
                    samples: list[float] = []
                    latencies[f"c={concurrency}"] = samples
                    queue = list(range(total, total + per_level))
                    total += per_level

                    async def requester(queue: list[int] = queue, samples: list[float] = samples) -> None:
                        while queue:
                            await request(queue.pop(), samples)

                    await asyncio.gather(*(requester() for _ in range(concurrency)))
            stop.set()
            await asyncio.gather(*background)
        notes = "; ".join(
            f"c={c}: p50 {percentile(s, 50):.1f} ms p99 {percentile(s, 99):.1f} ms"
            for c, s in ((k.split("=")[1], v) for k, v in latencies.items())
            if s
        )
        return meter.outcome(total, answered, latencies_ms=latencies, notes=notes)

    return asyncio.run(main())
