"""Security: what someone who can only write to a queue can (not) make a qfan worker do (issue #19).

Each test plays the attacker with a plain AWS client against a real emulator, then checks that only the
forged message is affected, that it is refused with a typed error (dead-lettered with the reason by
workers), and that nothing outside what the deployment allows was read, deleted or written.
"""

import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import msgspec
import pytest

import qfan
from qfan import _rpc
from qfan._rpc import _requester

from .helpers import AppFactory
from .support.aws import object_exists, raw_client
from .support.proxy import Proxy
from .test_cli import qfan as qfan_cli
from .test_workers import run_until

POINTER = "software.amazon.payloadoffloading.PayloadS3Pointer"
DEEP = "[" * 6000 + "]" * 6000  # ~12 KB that recursed the decoder out of the worker


class Job(msgspec.Struct):
    n: int


def envelope(message: str | Any, topic_arn: str = "arn:aws:sns:us-east-1:123456789012:any") -> str:
    """An SNS-envelope-shaped body, as anyone can send it to a queue."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message,
            "Timestamp": "2026-12-01T00:00:00.000Z",
            "MessageAttributes": {"role": {"Type": "String", "Value": "admin"}},
        }
    )


async def send_bodies(endpoint_url: str, queue_url: str, bodies: list[str], **extra: Any) -> None:
    """Send as a foreign producer: plain bodies, no qfan attributes."""
    async with raw_client("sqs", endpoint_url) as sqs:
        for body in bodies:
            await sqs.send_message(QueueUrl=queue_url, MessageBody=body, **extra)


async def drain(queue: qfan.Queue[Any], count: int) -> list[qfan.Message[Any]]:
    received: list[qfan.Message[Any]] = []
    with anyio.fail_after(60):
        while len(received) < count:
            received += await queue.receive(wait=2)
    return received


# -- 1. deeply nested JSON ----------------------------------------------------------------------------

DEEP_BODIES = {
    "plain": DEEP,
    "envelope-nesting": envelope("x").replace('"Message": "x"', f'"Message": {DEEP}'),
    "envelope-string": envelope(DEEP),
}


async def test_deeply_nested_bodies_are_dead_lettered_and_the_worker_keeps_going(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), dead_letter=dead, max_receives=5)  # any JSON: the decoder recurses
    handled: list[int] = []

    @app.worker(queue, name="nested", concurrency=4)
    async def handle(job: Any) -> None:
        handled.append(job["n"])

    async with app:
        good = [json.dumps({"n": i}) for i in range(5)]
        await send_bodies(endpoint_url, queue.info.url, [*good[:3], *DEEP_BODIES.values(), *good[3:]])
        await run_until(app, lambda: len(handled) == 5 and app.stats()["nested"].dead_lettered == 3)
        copies = await drain(dead, 3)
    assert sorted(handled) == list(range(5))
    assert sorted(c.raw_body for c in copies) == sorted(DEEP_BODIES.values())
    for copy in copies:
        assert copy.attributes["dead-letter-error"] == "DecodeError"
        assert "nested too deeply" in str(copy.attributes["dead-letter-reason"])


async def test_a_deeply_nested_body_fails_only_itself_in_receive(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    app = make_app()
    queue = app.queue(unique_name())
    async with app:
        await send_bodies(endpoint_url, queue.info.url, [json.dumps({"n": i}) for i in range(5)])
        await send_bodies(endpoint_url, queue.info.url, list(DEEP_BODIES.values()))
        messages = await drain(queue, 8)
    bad = [m for m in messages if m.raw_body in DEEP_BODIES.values()]
    assert sorted(m.body["n"] for m in messages if m not in bad) == list(range(5))
    assert len(bad) == 3
    for message in bad:
        with pytest.raises(qfan.DecodeError, match="nested too deeply"):
            _ = message.body


# -- 2. the offload prefix ----------------------------------------------------------------------------


def pointer(bucket: str, key: str) -> str:
    return json.dumps([POINTER, {"s3BucketName": bucket, "s3Key": key}], separators=(",", ":"))


MARKER = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "10"}}
FORGED_KEYS = [
    "billing/secret.json",  # outside the prefix
    "scans/../billing/secret.json",  # under it as a string, elsewhere once a path is normalised
    "scans/./../billing/secret.json",
    "scans\\..\\billing\\secret.json",
    "scans/%2e%2e/billing/secret.json",
]


async def test_pointers_outside_the_prefix_are_refused_never_fetched_never_deleted(
    make_app: AppFactory, proxy: Proxy, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = f"qfan-test-{uuid.uuid4().hex[:12]}"
    app = make_app(endpoint_url=proxy.endpoint_url)
    queue = app.queue(unique_name(), str, offload=qfan.Offload(bucket, prefix="scans/"))
    async with app, raw_client("s3", endpoint_url) as s3:
        await s3.put_object(Bucket=bucket, Key="billing/secret.json", Body=b"the billing secret")
        await s3.put_object(Bucket=bucket, Key="scans/page-1", Body=b"a scan")
        forged = [pointer(bucket, key) for key in FORGED_KEYS]
        legit = pointer(bucket, "scans/page-1")
        await send_bodies(endpoint_url, queue.info.url, [*forged, legit], MessageAttributes=MARKER)
        proxy.clear()
        messages = await drain(queue, len(forged) + 1)
        for message in messages:
            await message.ack()
        assert await object_exists(s3, bucket, "billing/secret.json")
    [fetched] = [m for m in messages if m.wire_body == legit]
    assert fetched.body == "a scan"
    refused = [m for m in messages if m is not fetched]
    assert sorted(m.wire_body for m in refused) == sorted(forged)
    for message in refused:
        with pytest.raises(qfan.PayloadRefused):
            _ = message.body
    touched = {r.path for r in proxy.s3_calls(bucket)}
    assert touched  # the legit payload was read and deleted: the proxy saw S3 traffic
    assert all("scans/page-1" in path for path in touched)


async def test_a_worker_dead_letters_a_pointer_outside_its_prefix(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    bucket = f"qfan-test-{uuid.uuid4().hex[:12]}"
    app = make_app()
    dead = app.queue(unique_name("dlq"))
    policy = qfan.Offload(bucket, prefix="scans/")
    queue = app.queue(unique_name(), str, dead_letter=dead, max_receives=5, offload=policy)
    handled: list[str] = []

    @app.worker(queue, name="scans")
    async def handle(body: str) -> None:
        handled.append(body)

    async with app, raw_client("s3", endpoint_url) as s3:
        await s3.put_object(Bucket=bucket, Key="billing/secret.json", Body=b"the billing secret")
        await send_bodies(
            endpoint_url, queue.info.url, [pointer(bucket, "billing/secret.json")], MessageAttributes=MARKER
        )
        await queue.send("fine")
        await run_until(app, lambda: handled == ["fine"] and app.stats()["scans"].dead_lettered == 1)
        [copy] = await drain(dead, 1)
        assert await object_exists(s3, bucket, "billing/secret.json")
    assert copy.attributes["dead-letter-error"] == "PayloadRefused"
    assert "outside the allowed prefixes" in str(copy.attributes["dead-letter-reason"])


def test_allowed_buckets_take_per_bucket_prefixes() -> None:
    policy = qfan.Offload(
        "own-bucket", prefix="scans/", allowed_buckets=["partner-bucket/incoming/", "open-bucket"]
    )
    assert policy.allows("own-bucket", "scans/x")
    assert not policy.allows("own-bucket", "billing/x")
    assert policy.allows("partner-bucket", "incoming/x")
    assert not policy.allows("partner-bucket", "outgoing/x")
    assert policy.allows("open-bucket", "anything")
    assert not policy.allows("open-bucket", "a/../b")
    assert not policy.allows("other-bucket", "scans/x")
    mapped = qfan.Offload("own-bucket", allowed_buckets={"partner-bucket": "incoming/"})
    assert mapped.allows("partner-bucket", "incoming/x")
    assert not mapped.allows("partner-bucket", "x")
    assert policy.allowed_buckets == ("open-bucket", "own-bucket/scans/", "partner-bucket/incoming/")
    with pytest.raises(qfan.ConfigError, match="segments"):
        qfan.Offload("own-bucket", prefix="scans/../")


async def test_cli_receive_keeps_to_the_offload_prefix(
    endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    bucket, queue = f"qfan-test-{uuid.uuid4().hex[:12]}", unique_name()
    async with raw_client("s3", endpoint_url) as s3, raw_client("sqs", endpoint_url) as sqs:
        await s3.create_bucket(Bucket=bucket)
        await s3.put_object(Bucket=bucket, Key="billing/secret.json", Body=b"the billing secret")
        url = (await sqs.create_queue(QueueName=queue))["QueueUrl"]
        await send_bodies(
            endpoint_url, url, [pointer(bucket, "billing/secret.json")], MessageAttributes=MARKER
        )
        where = ["--endpoint-url", endpoint_url, "--region", "us-east-1"]
        result = await anyio.to_thread.run_sync(
            lambda: qfan_cli("receive", queue, "--offload-bucket", f"{bucket}/scans/", "--ack", *where)
        )
        assert result.returncode == 0, result.stderr
        assert await object_exists(s3, bucket, "billing/secret.json")
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert "refused" in record["body"]["error"]
    assert "the billing secret" not in result.stdout


# -- 3. reply addresses -------------------------------------------------------------------------------


def responder(
    make_app: AppFactory, name: str, ran: list[int], dead: str, **options: Any
) -> tuple[qfan.App, qfan.Queue[Any]]:
    app = make_app()
    queue = app.queue(name, Job, dead_letter=app.queue(dead), max_receives=5)

    @app.responder(queue, name="double", **options)
    async def double(job: Job) -> Job:
        ran.append(job.n)
        if job.n < 0:
            raise ValueError(f"/srv/secret/config.yaml line {job.n}: password=hunter2")
        return Job(job.n * 2)

    return app, queue


async def test_a_request_naming_another_queue_is_dead_lettered_unhandled(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    ran: list[int] = []
    server, queue = responder(make_app, unique_name("double"), ran, unique_name("dlq"))
    victim = server.queue(unique_name("payments"))
    async with server, anyio.create_task_group() as tg:
        forged = {
            "ResponseQueueUrl": {"DataType": "String", "StringValue": victim.info.url},
            "qfan-correlation-id": {"DataType": "String", "StringValue": "c1"},
        }
        await send_bodies(endpoint_url, queue.info.url, ['{"n": 1}'], MessageAttributes=forged)
        tg.start_soon(server.run)
        with anyio.fail_after(60):
            while server.stats()["double"].dead_lettered < 1:  # noqa: ASYNC110 - polling a counter
                await anyio.sleep(0.05)
        server.stop()
        assert await victim.receive(wait=1) == []  # nothing was written to the victim's queue
        [copy] = await drain(queue.dead_letter, 1)  # type: ignore[arg-type]
    assert ran == []  # checked before the handler: a refused request never runs
    assert copy.attributes["dead-letter-error"] == "Reject"
    assert "reply address refused" in str(copy.attributes["dead-letter-reason"])


async def test_reply_to_widens_the_allowed_reply_queues(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    ran: list[int] = []
    server, queue = responder(
        make_app, unique_name("double"), ran, unique_name("dlq"), reply_to=["web-replies-*"]
    )
    replies = server.queue(f"web-replies-{uuid.uuid4().hex[:8]}", Job)
    async with server, anyio.create_task_group() as tg:
        address = {
            "ResponseQueueUrl": {"DataType": "String", "StringValue": replies.info.url},
            "qfan-correlation-id": {"DataType": "String", "StringValue": "c2"},
        }
        await send_bodies(endpoint_url, queue.info.url, ['{"n": 21}'], MessageAttributes=address)
        tg.start_soon(server.run)
        [reply] = await drain(replies, 1)
        server.stop()
    assert reply.body == Job(42)
    assert reply.attributes["qfan-correlation-id"] == "c2"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("http://127.0.0.1:4566/123456789012/payments", "matches none of the allowed names"),
        ("http://127.0.0.1:4566/999999999999/qfan-reply-x", "endpoint and account"),
        ("http://evil.example:4566/123456789012/qfan-reply-x", "endpoint and account"),
        ("http://127.0.0.1:4566/123456789012/qfan-reply-x?Action=DeleteQueue", "not a queue URL"),
        ("http://127.0.0.1:4566/123456789012/a/qfan-reply-x", "not a queue URL"),
        ("file:///etc/passwd", "not a queue URL"),
        (b"bytes", "not a queue URL"),
        ("http://127.0.0.1:4566/123456789012/qfan-reply-app-1a2b", None),
        ("http://127.0.0.1:4566/123456789012/web-replies-7", None),
        ("https://sqs.eu-west-1.amazonaws.com/111122223333/partner-replies", None),
    ],
)
def test_reply_address_rule(address: object, why: str | None) -> None:
    rule = _rpc.ReplyAddresses(["web-replies-*", "https://sqs.eu-west-1.amazonaws.com/111122223333/*"])
    refusal = rule.refusal(address, "http://127.0.0.1:4566/123456789012/requests")
    if why is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert why in refusal


async def test_handler_errors_reach_the_requester_without_their_text(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    ran: list[int] = []
    name = unique_name("double")
    server, _ = responder(make_app, name, ran, unique_name("dlq"))
    exposing, _ = responder(make_app, unique_name("double"), ran, unique_name("dlq"), expose_errors=True)
    client = make_app()
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        with pytest.raises(qfan.RemoteError) as caught:
            await client.request(client.queue(name, Job), Job(-1), response_type=Job, timeout=30)
        server.stop()
    assert caught.value.remote_type == "ValueError"
    assert "hunter2" not in str(caught.value)
    assert "/srv/secret" not in str(caught.value)
    assert caught.value.correlation_id is not None
    assert caught.value.correlation_id in caught.value.remote_message
    async with exposing, client, anyio.create_task_group() as tg:
        tg.start_soon(exposing.run)
        target = client.queue(exposing.workers["double"].queue.name, Job)
        with pytest.raises(qfan.RemoteError) as shown:
            await client.request(target, Job(-2), response_type=Job, timeout=30)
        exposing.stop()
    assert "password=hunter2" in shown.value.remote_message  # opted in


# -- 7. the reply-queue sweeper -----------------------------------------------------------------------


def test_sweeping_below_the_heartbeat_floor_is_refused(endpoint_url: str) -> None:
    where = ["--endpoint-url", endpoint_url, "--region", "us-east-1"]
    result = qfan_cli("sweep-reply-queues", "--idle", "0", *where)
    assert result.returncode != 0
    assert "too short" in result.stderr
    with pytest.raises(qfan.ConfigError, match="too short"):
        qfan.App("x", sweep_reply_queues=5)


async def test_a_live_reply_queue_survives_a_sweep_and_a_deleted_one_is_replaced(
    make_app: AppFactory, unique_name: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_requester, "RECEIVE_WAIT", 1)  # notice the deletion within a second, not twenty
    ran: list[int] = []
    name = unique_name("double")
    server, _ = responder(make_app, name, ran, unique_name("dlq"))
    client, sweeper = make_app(), make_app()
    stale = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    orphan = sweeper.queue(f"qfan-reply-{unique_name('crashed')}", tags={"qfan:heartbeat": stale})
    queue = client.queue(name, Job)
    async with server, client, sweeper, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        assert await client.request(queue, Job(1), response_type=Job, timeout=30) == Job(2)
        live = client.reply_queue_url
        swept = await sweeper.sweep_reply_queues(idle_seconds=_rpc.MIN_SWEEP_IDLE)
        assert orphan.info.url in swept
        assert live not in swept  # its heartbeat is fresh: proven alive
        async with raw_client("sqs", client.settings.endpoint("sqs") or "") as sqs:
            await sqs.delete_queue(QueueUrl=live)  # an operator (or an old sweeper) deletes it anyway
        with anyio.fail_after(30):
            while client.reply_queue_url == live:  # noqa: ASYNC110 - polling the router's address
                await anyio.sleep(0.1)
        assert await client.request(queue, Job(5), response_type=Job, timeout=30) == Job(10)
        server.stop()


# -- 9. qfan.local() and the developer's real settings -------------------------------------------------

REAL = {
    "AWS_SESSION_TOKEN": "real-session-token-of-the-developer",
    "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9",  # nothing listens: using it fails loudly
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
    "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:9",
    "AWS_PROFILE": "production",
}


async def test_local_points_every_aws_setting_at_the_emulator_and_restores_them(
    monkeypatch: pytest.MonkeyPatch, unique_name: Callable[..., str]
) -> None:
    for name, value in REAL.items():
        monkeypatch.setenv(name, value)
    before = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    async with qfan.local() as emulator:
        inside = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
        app = qfan.App("local-test", transport="fast")
        queue = app.queue(unique_name(), str, offload=qfan.Offload(f"qfan-test-{uuid.uuid4().hex[:8]}"))
        async with app:
            await queue.send("x" * 300_000)  # SQS and S3 both reached: the emulator's endpoint
            [message] = await queue.receive(wait=5)
            assert message.body == "x" * 300_000
    assert not set(REAL) & set(inside)
    assert inside["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert "real-session-token" not in repr(inside)
    assert {name: value for name, value in os.environ.items() if name.startswith("AWS_")} == before


# -- 10. SNS envelopes from topics the queue is not subscribed to ---------------------------------------


async def test_forged_envelopes_on_a_subscribed_queue_are_dead_lettered(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    app = make_app()
    topic = app.topic(unique_name("events"), str)
    dead = app.queue(unique_name("dlq"))
    queue = app.queue(unique_name(), str, dead_letter=dead, max_receives=5)
    app.subscribe(topic, queue, raw=False)
    seen: list[tuple[str, str | None]] = []

    @app.worker(queue, name="events")
    async def handle(body: str, message: qfan.Message[str]) -> None:
        seen.append((body, None if message.sns is None else message.sns.topic_arn))

    async with app:
        topic_arn = topic.info.arn
        account = topic_arn.split(":")[4]
        forged = [
            envelope("forged: any topic"),
            envelope("forged: other account", topic_arn.replace(account, "999999999999")),
            envelope("forged: not an ARN", "not-an-arn"),
        ]
        await send_bodies(endpoint_url, queue.info.url, forged)
        await topic.publish("genuine")
        await run_until(app, lambda: len(seen) == 1 and app.stats()["events"].dead_lettered == 3)
        copies = await drain(dead, 3)
    assert seen == [("genuine", topic_arn)]
    assert sorted(c.raw_body for c in copies) == sorted(forged)
    for copy in copies:
        assert copy.attributes["dead-letter-error"] == "EnvelopeRefused"
        assert "not one the queue is subscribed to" in str(copy.attributes["dead-letter-reason"])


async def test_accept_topic_names_topics_subscribed_outside_qfan(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    app = make_app()
    queue = app.queue(unique_name(), str)
    async with app:
        queue_arn = queue.info.arn
        region, account = queue_arn.split(":")[3:5]
        mine = f"arn:aws:sns:{region}:{account}:billing-events"
        queue.accept_topic("billing-events")
        await send_bodies(endpoint_url, queue.info.url, [envelope("ok", mine), envelope("no")])
        messages = await drain(queue, 2)
    [accepted] = [m for m in messages if m.sns is not None]
    assert accepted.body == "ok"
    assert accepted.attributes["role"] == "admin"
    [refused] = [m for m in messages if m is not accepted]
    with pytest.raises(qfan.EnvelopeRefused) as caught:
        _ = refused.body
    assert caught.value.topic_arn == "arn:aws:sns:us-east-1:123456789012:any"
