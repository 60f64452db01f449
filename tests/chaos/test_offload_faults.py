"""S3 failing at each step of an offloaded message's life: upload, download, delete.

- upload fails: the send fails cleanly (a ``QfanError``) and nothing is enqueued;
- download fails: the message is retried, then dead-lettered with the reason;
- delete fails: the message is still acked (deleted from SQS) exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import anyio
import msgspec
import pytest

import qfan

from ..support.aws import raw_client
from ..support.emulators import Emulator
from ..support.proxy import FaultPlan, Proxy, running_proxy
from .report import Row, Sizes, record

pytestmark = pytest.mark.chaos

FAST = qfan.Backoff(initial=0, maximum=1, jitter=0)
S3_FAULTS: dict[Any, float] = {"server_error": 1, "throttle": 1, "reset_before": 1}


class Doc(msgspec.Struct):
    id: int
    text: str


def names() -> tuple[str, str]:
    token = uuid.uuid4().hex[:10]
    return f"chaos-offload-{token}", f"offload-{token}"


def make_app(proxy: Proxy) -> qfan.App:
    retry = qfan.RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
    return qfan.App("chaos-offload", endpoint_url=proxy.endpoint_url, region="us-east-1", retry=retry)


async def queue_depth(endpoint_url: str, queue: qfan.Queue[Any]) -> int:
    """Visible plus in-flight messages, asked of the emulator directly."""
    async with raw_client("sqs", endpoint_url) as sqs:
        url = (await sqs.get_queue_url(QueueName=queue.name))["QueueUrl"]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        answer = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return sum(int(answer["Attributes"][name]) for name in names)


async def test_upload_failing_fails_the_send_and_enqueues_nothing(
    chaos_server: Emulator, sizes: Sizes
) -> None:
    bucket, name = names()
    started = time.monotonic()
    with running_proxy(chaos_server.endpoint_url) as proxy:
        app = make_app(proxy)
        queue = app.queue(name, Doc, offload=qfan.Offload(bucket, always=True))
        failures = 0
        async with app:
            proxy.plan(FaultPlan(rate=1, seed=1, mix=S3_FAULTS, only=frozenset({"s3:PUT"})))
            for i in range(sizes.offload_messages):
                with pytest.raises(qfan.QfanError):
                    await queue.send(Doc(i, "x" * 1000))
                failures += 1
            proxy.plan(None)
        sends = proxy.calls("SendMessage") + proxy.calls("SendMessageBatch")
        injected = sum(proxy.injected.values())
    depth = await queue_depth(chaos_server.endpoint_url, queue)
    record(
        Row("offload: S3 upload fails", sizes.offload_messages, injected, 0, 0, 0, time.monotonic() - started)
    )
    assert failures == sizes.offload_messages
    assert sends == []
    assert depth == 0


async def test_download_failing_is_retried_then_dead_lettered_with_the_reason(
    chaos_server: Emulator, sizes: Sizes
) -> None:
    bucket, name = names()
    count, started = sizes.offload_messages, time.monotonic()
    calls: Counter[int] = Counter()
    with running_proxy(chaos_server.endpoint_url) as proxy:
        app = make_app(proxy)
        policy = qfan.Offload(bucket, always=True)
        dead = app.queue(f"{name}-dlq", offload=policy)
        queue = app.queue(name, Doc, offload=policy, dead_letter=dead, max_receives=3, visibility_timeout=5)

        @app.worker(queue, name="docs", backoff=FAST)
        async def handle(doc: Doc) -> None:
            calls[doc.id] += 1

        async with app:
            await queue.send_many([Doc(i, "y" * 1000) for i in range(count)])
            proxy.plan(FaultPlan(rate=1, seed=2, mix=S3_FAULTS, only=frozenset({"s3:GET"})))
            async with anyio.create_task_group() as tg:
                tg.start_soon(app.run)
                with anyio.fail_after(120):
                    while app.stats()["docs"].dead_lettered < count:  # noqa: ASYNC110 - polling counters
                        await anyio.sleep(0.1)
                app.stop()
            proxy.plan(None)
            stats = app.stats()["docs"]
        injected = sum(proxy.injected.values())
    async with raw_client("sqs", chaos_server.endpoint_url) as sqs:
        url = (await sqs.get_queue_url(QueueName=dead.name))["QueueUrl"]
        copies: list[dict[str, Any]] = []
        while len(copies) < count:
            answer = await sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2, MessageAttributeNames=["All"]
            )
            assert answer.get("Messages"), f"only {len(copies)} of {count} in the dead-letter queue"
            copies.extend(answer["Messages"])
    record(
        Row(
            "offload: S3 download fails",
            count,
            injected,
            0,
            0,
            stats.dead_lettered,
            time.monotonic() - started,
        )
    )
    assert calls == Counter()
    assert stats.retried == 2 * count  # attempts 1 and 2 retried, the 3rd dead-lettered
    for copy in copies:
        attributes = copy["MessageAttributes"]
        assert attributes["dead-letter-error"]["StringValue"] == "PayloadUnavailable"
        assert attributes["dead-letter-reason"]["StringValue"].startswith(
            "failed 3 times: PayloadUnavailable"
        )
    assert await queue_depth(chaos_server.endpoint_url, queue) == 0


async def test_delete_failing_still_acks_each_message_once(chaos_server: Emulator, sizes: Sizes) -> None:
    bucket, name = names()
    count, started = sizes.offload_messages, time.monotonic()
    calls: Counter[int] = Counter()
    with running_proxy(chaos_server.endpoint_url) as proxy:
        app = make_app(proxy)
        queue = app.queue(name, Doc, offload=qfan.Offload(bucket, always=True), visibility_timeout=2)

        @app.worker(queue, name="docs", backoff=FAST)
        async def handle(doc: Doc) -> None:
            calls[doc.id] += 1

        async with app:
            await queue.send_many([Doc(i, "z" * 1000) for i in range(count)])
            proxy.plan(FaultPlan(rate=1, seed=3, mix=S3_FAULTS, only=frozenset({"s3:DELETE"})))
            async with anyio.create_task_group() as tg:
                tg.start_soon(app.run)
                with anyio.fail_after(120):
                    while len(calls) < count:  # noqa: ASYNC110 - polling what the handler records
                        await anyio.sleep(0.1)
                await anyio.sleep(4)  # twice the visibility timeout: an un-acked message would be back
                app.stop()
            proxy.plan(None)
        deletes = proxy.calls("DeleteMessage") + proxy.calls("DeleteMessageBatch")
        injected = sum(proxy.injected.values())
    duplicated = sum(n - 1 for n in calls.values())
    record(Row("offload: S3 delete fails", count, injected, 0, duplicated, 0, time.monotonic() - started))
    assert calls == Counter(range(count))
    assert injected > 0
    assert deletes
    assert await queue_depth(chaos_server.endpoint_url, queue) == 0
