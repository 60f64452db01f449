"""Request/response over queues against a real emulator."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .support.aws import raw_client
from .support.proxy import Proxy, corrupt_body
from .test_cli import qfan as qfan_cli


class Resize(msgspec.Struct):
    key: str
    width: int


class Resized(msgspec.Struct):
    key: str
    thumbnail: str


def responder_app(make_app: AppFactory, name: str, delay: float = 0.0) -> qfan.App:
    app = make_app()
    queue = app.queue(name, Resize)

    @app.responder(queue, name="resize", concurrency=32, expose_errors=True)
    async def resize(request: Resize) -> Resized:
        if request.width < 0:
            raise ValueError(f"bad width {request.width}")
        await anyio.sleep(delay)
        return Resized(request.key, f"{request.key}@{request.width}")

    return app


# moto's every SQS call costs O(messages in the queue) (see EMULATORS.md): fewer requests there.
CONCURRENT_REQUESTS = {"moto": 200, "ministack": 500}


async def test_concurrent_requests_each_get_their_own_reply(
    make_app: AppFactory, unique_name: Callable[..., str], emulator_name: str
) -> None:
    count = CONCURRENT_REQUESTS[emulator_name]
    name = unique_name("resize")
    server, client = responder_app(make_app, name), make_app()
    queue = client.queue(name, Resize)
    replies: dict[int, Resized] = {}

    async def ask(i: int) -> None:
        replies[i] = await client.request(queue, Resize(f"k{i}", i), response_type=Resized, timeout=120)

    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        async with anyio.create_task_group() as requests:
            for i in range(count):
                requests.start_soon(ask, i)
        server.stop()
    assert replies == {i: Resized(f"k{i}", f"k{i}@{i}") for i in range(count)}
    assert client.rpc_stats.replied == count
    # At-least-once: a request delivered twice (an emulator under load may) is answered twice, and the
    # second reply is dropped and counted, never handed to anyone.
    assert client.rpc_stats.dropped <= 5


async def test_remote_error(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    name = unique_name("resize")
    server, client = responder_app(make_app, name), make_app()
    queue = client.queue(name, Resize)
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        with pytest.raises(qfan.RemoteError) as caught:
            await client.request(queue, Resize("x", -1), response_type=Resized, timeout=30)
        server.stop()
    assert caught.value.remote_type == "ValueError"
    assert caught.value.remote_message == "bad width -1"
    assert server.stats()["resize"].succeeded == 1  # answered (with the error), not retried


async def test_timeout_then_the_late_reply_is_dropped_and_counted(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    name = unique_name("resize")
    server, client = responder_app(make_app, name), make_app()
    queue = client.queue(name, Resize)
    async with client:
        with pytest.raises(qfan.RequestTimeout):
            await client.request(queue, Resize("late", 1), response_type=Resized, timeout=0.5)
        assert client.rpc_stats.timed_out == 1
        async with server, anyio.create_task_group() as tg:  # the responder comes up only now
            tg.start_soon(server.run)
            with anyio.fail_after(30):
                while client.rpc_stats.dropped == 0:  # noqa: ASYNC110 - polling a counter
                    await anyio.sleep(0.1)
            server.stop()
    assert client.rpc_stats.replied == 0


async def test_responder_restart_mid_stream(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    name = unique_name("resize")
    client = make_app()
    queue = client.queue(name, Resize)
    replies: dict[int, Resized] = {}

    async def ask(i: int) -> None:
        replies[i] = await client.request(queue, Resize(f"k{i}", i), response_type=Resized, timeout=120)

    async with client, anyio.create_task_group() as requests:
        for i in range(60):
            requests.start_soon(ask, i)
        first = responder_app(make_app, name, delay=0.05)
        async with first, anyio.create_task_group() as tg:
            tg.start_soon(first.run)
            with anyio.fail_after(60):
                while len(replies) < 10:  # noqa: ASYNC110 - polling the replies so far
                    await anyio.sleep(0.05)
            first.stop()  # graceful: running handlers answer, unstarted requests go back to the queue
        second = responder_app(make_app, name)
        async with second, anyio.create_task_group() as tg:
            tg.start_soon(second.run)
            with anyio.fail_after(120):
                while len(replies) < 60:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            second.stop()
    assert replies == {i: Resized(f"k{i}", f"k{i}@{i}") for i in range(60)}


async def test_reply_queue_is_deleted_on_shutdown_and_orphans_are_swept(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    name = unique_name("resize")
    server, client = responder_app(make_app, name), make_app()
    queue = client.queue(name, Resize)
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        await client.request(queue, Resize("a", 1), response_type=Resized, timeout=30)
        reply_url = client.reply_queue_url
        assert reply_url is not None
        assert reply_url.rpartition("/")[2].startswith("qfan-reply-")
        server.stop()
    lookup = make_app()
    lookup.queue(reply_url.rpartition("/")[2], create=False)
    with pytest.raises(qfan.QueueNotFound):
        async with lookup:
            pass

    stale = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    fresh = datetime.now(UTC).isoformat(timespec="seconds")
    sweeper = make_app()
    orphan = sweeper.queue(f"qfan-reply-{unique_name('crashed')}", tags={"qfan:heartbeat": stale})
    alive = sweeper.queue(f"qfan-reply-{unique_name('alive')}", tags={"qfan:heartbeat": fresh})
    async with sweeper:
        pass
    endpoint = sweeper.settings.endpoint("sqs") or ""
    result = await anyio.to_thread.run_sync(
        lambda: qfan_cli(
            "sweep-reply-queues", "--idle", "3600", "--endpoint-url", endpoint, "--region", "us-east-1"
        )
    )
    assert result.returncode == 0, result.stderr
    assert f"deleted {orphan.info.url}" in result.stdout
    assert alive.info.url not in result.stdout
    async with make_app() as again:
        assert await again.queue(alive.name, create=False).declare()  # still there
        assert await again.sweep_reply_queues(idle_seconds=3600) == []  # the orphan is gone


async def test_large_requests_and_replies_go_through_s3_and_are_cleaned_up(
    make_app: AppFactory, endpoint_url: str, proxy: Proxy, unique_name: Callable[..., str]
) -> None:
    bucket = f"qfan-rpc-{unique_name('b').lower()[-20:]}"
    name = unique_name("echo")
    server, client = make_app(endpoint_url=proxy.endpoint_url), make_app(endpoint_url=proxy.endpoint_url)
    served = server.queue(name, str, max_message_size=262_144, offload=qfan.Offload(bucket))

    @server.responder(served, name="echo")
    async def echo(text: str) -> str:
        return text[::-1] * 2  # a reply twice the request's size

    asked = client.queue(name, str, max_message_size=262_144, offload=qfan.Offload(bucket))
    text = "é" * 140_000 + "end"  # 280 KB of UTF-8, over SQS's 256 KiB: offloaded; so is the 560 KB reply
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        reply = await client.request(asked, text, response_type=str, timeout=60)
        small = await client.request(asked, "abc", response_type=str, timeout=60)
        server.stop()
    assert reply == text[::-1] * 2
    assert small == "cbacba"
    uploads = [r for r in proxy.s3_calls(bucket, "PUT") if "/" in r.path.split("?")[0].strip("/")]
    assert len(uploads) == 2  # the large request and the large reply; the small ones went inline
    async with raw_client("s3", endpoint_url) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0  # request and reply payloads were deleted once read


async def test_a_reply_too_large_without_offload_is_a_remote_error_not_a_timeout(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    name = unique_name("big")
    server, client = make_app(), make_app()

    @server.responder(server.queue(name, int), name="big")
    async def big(n: int) -> str:
        return "x" * n

    queue = client.queue(name, int)
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        with pytest.raises(qfan.RemoteError) as caught:
            await client.request(queue, 300_000, response_type=str, timeout=60)
        assert await client.request(queue, 3, response_type=str, timeout=60) == "xxx"
        server.stop()
    assert caught.value.remote_type == "MessageTooLarge"
    assert "300" in caught.value.remote_message


async def test_a_reply_corrupted_in_flight_is_a_typed_error_not_a_wrong_value(
    make_app: AppFactory, unique_name: Callable[..., str], proxy: Proxy
) -> None:
    name = unique_name("resize")
    server = responder_app(make_app, name)
    client = make_app(endpoint_url=proxy.endpoint_url)  # only the requester's traffic crosses the proxy
    queue = client.queue(name, Resize)
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        assert await client.request(queue, Resize("a", 1), response_type=Resized, timeout=30) == Resized(
            "a", "a@1"
        )
        proxy.inject("ReceiveMessage", corrupt_body(), times=1_000)  # every reply from now on is altered
        with pytest.raises(qfan.ChecksumMismatch):
            await client.request(queue, Resize("b", 2), response_type=Resized, timeout=30)
        server.stop()
    assert client.rpc_stats.replied == 2
