"""Workers on offloading queues: unreadable payloads are dead-lettered (as pointers), flaky S3 is retried."""

import uuid
from collections.abc import Callable
from typing import Any

import anyio

import qfan

from .helpers import AppFactory
from .support.aws import raw_client
from .support.proxy import Proxy, server_error

FAST = qfan.Backoff(initial=0, maximum=1, jitter=0)


def bucket_name() -> str:
    return f"qfan-test-{uuid.uuid4().hex[:12]}"


async def run_until(app: qfan.App, done: Callable[[], bool], limit: float = 60) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        with anyio.fail_after(limit):
            while not done():  # noqa: ASYNC110 - polling counters the workers update
                await anyio.sleep(0.05)
        app.stop()


async def test_a_missing_payload_is_dead_lettered_and_the_others_handled(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = bucket_name()
    policy = qfan.Offload(bucket, always=True)
    app = make_app()
    dead = app.queue(unique_name("dlq"), offload=policy)
    queue = app.queue(unique_name(), offload=policy, dead_letter=dead)
    handled: list[Any] = []

    @app.worker(queue, name="payloads", backoff=FAST)
    async def handle(body: Any) -> None:
        handled.append(body)

    async with app, raw_client("s3", endpoint_url) as s3:
        await queue.send({"n": 1})
        await queue.send({"n": 2})
        [first, second] = sorted(await queue.receive(wait=5, visibility=0), key=lambda m: m.body["n"])
        assert first.payload is not None
        await s3.delete_object(Bucket=bucket, Key=first.payload.key)  # lost before anyone read it
        await run_until(
            app, lambda: app.stats()["payloads"].dead_lettered == 1 and app.stats()["payloads"].succeeded == 1
        )
        [copy] = await dead.receive(wait=5)
    assert handled == [{"n": 2}]
    assert copy.attributes["dead-letter-error"] == "PayloadMissing"
    assert copy.payload == first.payload  # the pointer itself was dead-lettered
    assert copy.wire_body == first.wire_body
    assert second.payload is not None


async def test_payloads_s3_failed_to_deliver_are_retried_not_dead_lettered(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url, retry=qfan.RetryPolicy(attempts=2, initial_wait=0.01))
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), offload=qfan.Offload(bucket_name(), always=True), dead_letter=dead)
    handled: list[Any] = []

    @app.worker(queue, name="flaky-s3", backoff=FAST)
    async def handle(body: Any) -> None:
        handled.append(body)

    async with app:
        await queue.send({"n": 1})
        proxy.inject("s3:GET", server_error(503), times=2)  # every try of the first delivery
        await run_until(app, lambda: app.stats()["flaky-s3"].succeeded == 1)
    stats = app.stats()["flaky-s3"]
    assert handled == [{"n": 1}]
    assert (stats.retried, stats.dead_lettered) == (1, 0)
