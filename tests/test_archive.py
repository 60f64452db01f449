"""The archive sink against a real emulator: size and interval flushes, key layout, errors prefix, gzip,
Parquet, failing writes, and acks only after the object is in S3."""

import gzip
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .support.aws import raw_client

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


class Tick(msgspec.Struct):
    TICKER_SYMBOL: str
    SECTOR: str
    CHANGE: float
    PRICE: float


def tick(i: int, sector: str = "FINANCIAL") -> Tick:
    return Tick(f"T{i:03d}", sector, round(i / 10, 2), 100.0 + i)


async def s3_objects(endpoint_url: str, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix``, read directly (not through qfan)."""
    out: dict[str, bytes] = {}
    async with raw_client("s3", endpoint_url) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        for item in listed.get("Contents", []):
            got = await s3.get_object(Bucket=bucket, Key=item["Key"])
            async with got["Body"] as body:
                out[item["Key"]] = await body.read()
    return out


async def queue_counts(endpoint_url: str, name: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS reports them."""
    async with raw_client("sqs", endpoint_url) as sqs:
        url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
        attributes = (
            await sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
        )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


async def archive_until(app: qfan.App, done: Callable[[], bool], limit: float = 30) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        with anyio.fail_after(limit):
            while not done():  # noqa: ASYNC110 - polling the archiver's counters
                await anyio.sleep(0.05)
        app.stop()


def archiving(
    make_app: AppFactory,
    unique_name: Callable[..., str],
    record_type: Any = None,
    visibility_timeout: int | None = None,
    hooks: Any = (),
    **sink: Any,
) -> tuple[qfan.App, qfan.Queue[Any], qfan.Archiver, str]:
    """An app with a queue of ``record_type`` (default Tick) archived to a new bucket as ``sink`` says
    (by default under ``datos/``, in 0.5 s buffers, with the clock at ``WHEN``)."""
    sink = {"prefix": "datos/", "max_interval": 0.5, "clock": lambda: WHEN, **sink}
    app = make_app(hooks=list(hooks))
    bucket = unique_name("arch")
    queue = app.queue(unique_name(), record_type or Tick, visibility_timeout=visibility_timeout)
    archiver = app.archive(queue, sink=qfan.S3Archive(bucket, **sink), receive_wait=1)
    return app, queue, archiver, bucket


def lines(data: bytes) -> list[Any]:
    return [msgspec.json.decode(line) for line in data.splitlines()]


async def test_size_flushes_keep_the_date_layout_and_ack_only_what_was_written(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app, queue, archiver, bucket = archiving(
        make_app,
        unique_name,
        None,
        5,
        prefix="datos/",
        error_prefix="errores/",
        max_bytes=600,
        max_interval=900,
        clock=lambda: WHEN,
    )
    async with app:
        await queue.send_many([tick(i) for i in range(40)])
        # 8 lines of ~73 B fill a 600 B buffer: 4 buffers are written on size alone (the interval is 15
        # min); the 5th is not full, and is written when the worker stops.
        await archive_until(app, lambda: archiver.stats.records >= 32)
    written = await s3_objects(endpoint_url, bucket)
    assert len(written) == archiver.stats.objects >= 5  # 40 lines of ~75 B in 600 B buffers
    for key, data in written.items():
        assert key.startswith("datos/2026/03/04/05/archive-" + queue.name + "-2026-03-04-05-06-07-")
        assert key.endswith(".jsonl")
        assert len(data) <= 600
    records = [msgspec.convert(r, Tick) for data in written.values() for r in lines(data)]
    assert sorted(records, key=lambda t: t.TICKER_SYMBOL) == [tick(i) for i in range(40)]
    assert archiver.stats.records == 40
    assert await queue_counts(endpoint_url, queue.name) == (0, 0)


async def test_interval_flush_gzip_and_dynamic_partitions(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app, queue, archiver, bucket = archiving(
        make_app,
        unique_name,
        compression="gzip",
        key_template="sector={field:SECTOR}/src={attr:source}/{yyyy}/{MM}/{dd}/{HH}/",
    )
    async with app:
        await queue.send_many([tick(i, "TECH") for i in range(4)], attributes={"source": "feed-a"})
        await queue.send_many([tick(i, "ENERGY") for i in range(4, 7)], attributes={"source": "feed-b"})
        await archive_until(app, lambda: archiver.stats.records == 7)
    written = await s3_objects(endpoint_url, bucket)
    by_partition: dict[str, list[str]] = {}
    for key, data in written.items():
        assert key.endswith(".jsonl.gz")
        partition = key.rsplit("/", 1)[0]
        by_partition.setdefault(partition, []).extend(r["SECTOR"] for r in lines(gzip.decompress(data)))
    assert {p: sorted(set(s)) for p, s in by_partition.items()} == {
        "datos/sector=TECH/src=feed-a/2026/03/04/05": ["TECH"],
        "datos/sector=ENERGY/src=feed-b/2026/03/04/05": ["ENERGY"],
    }
    assert sum(map(len, by_partition.values())) == 7
    assert await queue_counts(endpoint_url, queue.name) == (0, 0)


async def test_bad_records_go_to_the_error_prefix_with_reasons_and_are_acked(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app, queue, archiver, bucket = archiving(
        make_app, unique_name, error_prefix="errores/", key_template="{attr:region}/{yyyy}/{MM}/{dd}/{HH}/"
    )
    async with app:
        await queue.send(tick(1), attributes={"region": "eu"})
        await queue.send(tick(2))  # no region attribute: cannot be partitioned
        await queue.send({"TICKER_SYMBOL": "BAD"}, attributes={"region": "eu"})  # not a Tick
        async with raw_client("sqs", endpoint_url) as sqs:  # another producer's unparseable body
            url = (await sqs.get_queue_url(QueueName=queue.name))["QueueUrl"]
            await sqs.send_message(QueueUrl=url, MessageBody="{not json")
        await archive_until(app, lambda: archiver.stats.records + archiver.stats.error_records == 4)
    errors = await s3_objects(endpoint_url, bucket, "errores/")
    by_type = {key.split("/")[1]: lines(data) for key, data in errors.items()}
    assert set(by_type) == {"decode", "partition"}
    assert all(key.split("/", 2)[2].startswith("2026/03/04/05/") for key in errors)
    decode = sorted(by_type["decode"], key=lambda r: r["raw_body"])
    assert [r["raw_body"] for r in decode] == ['{"TICKER_SYMBOL":"BAD"}', "{not json"]
    assert all("cannot decode" in r["reason"] and r["error_type"] == "decode" for r in decode)
    [partition] = by_type["partition"]
    assert "attr:region is missing" in partition["reason"]
    assert msgspec.json.decode(partition["raw_body"], type=Tick) == tick(2)
    data = await s3_objects(endpoint_url, bucket, "datos/")
    assert [k.split("/")[1] for k in data] == ["eu"]
    assert [msgspec.convert(r, Tick) for d in data.values() for r in lines(d)] == [tick(1)]
    assert await queue_counts(endpoint_url, queue.name) == (0, 0)  # nothing blocks the stream


async def test_a_failing_write_is_retried_and_never_acks(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app, queue, archiver, bucket = archiving(  # the bucket is not there
        make_app, unique_name, None, 2, max_interval=0.3, declare_bucket=False
    )
    async with app:
        await queue.send_many([tick(i) for i in range(5)])
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            with anyio.fail_after(30):
                while archiver.stats.write_failures < 2:  # noqa: ASYNC110 - polling the counters
                    await anyio.sleep(0.05)
                await anyio.sleep(2.5)  # past the visibility timeout: the heartbeat keeps them held
                assert await queue_counts(endpoint_url, queue.name) == (0, 5)
                assert archiver.stats.objects == 0
                async with raw_client("s3", endpoint_url) as s3:
                    await s3.create_bucket(Bucket=bucket)
                while archiver.stats.records < 5:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            app.stop()
    [data] = (await s3_objects(endpoint_url, bucket)).values()
    assert sorted(r["TICKER_SYMBOL"] for r in lines(data)) == [f"T{i:03d}" for i in range(5)]
    assert await queue_counts(endpoint_url, queue.name) == (0, 0)


class Quote(msgspec.Struct):
    symbol: str
    price: float
    volume: int
    at: datetime
    tags: list[str]
    venue: str | None = None


async def test_parquet_round_trips_with_the_schema_of_the_type(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    app, queue, archiver, bucket = archiving(make_app, unique_name, Quote, format="parquet", max_interval=0.5)
    quotes = [Quote("QXZ", 219.42, 10 * i, WHEN, ["a"] * i, "NYSE" if i % 2 else None) for i in range(6)]
    async with app:
        await queue.send_many(quotes)
        await archive_until(app, lambda: archiver.stats.records == 6)
    tables = [pq.read_table(io.BytesIO(d)) for d in (await s3_objects(endpoint_url, bucket)).values()]
    expected = pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("price", pa.float64(), nullable=False),
            pa.field("volume", pa.int64(), nullable=False),
            pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("tags", pa.list_(pa.field("element", pa.string())), nullable=False),
            pa.field("venue", pa.string(), nullable=True),
        ]
    )
    assert qfan.parquet_schema(Quote).equals(expected)
    assert all(t.schema.equals(expected) for t in tables)
    rows = [row for t in tables for row in t.to_pylist()]
    assert sorted((msgspec.convert(r, Quote) for r in rows), key=lambda q: q.volume) == quotes


async def test_a_message_delivered_again_while_buffered_is_written_once_and_deleted(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    handles: list[str] = []

    class Handles(qfan.PipelineHooks):
        def after_receive(self, message: qfan.Message[Any]) -> None:
            handles.append(message.receipt_handle)

    app, queue, archiver, bucket = archiving(make_app, unique_name, hooks=[Handles()], max_interval=900)
    async with app:
        await queue.send(tick(7))
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            with anyio.fail_after(30):
                while archiver.stats.buffered < 1:  # noqa: ASYNC110 - polling the counters
                    await anyio.sleep(0.05)
                async with raw_client("sqs", endpoint_url) as sqs:  # SQS delivers it again
                    url = (await sqs.get_queue_url(QueueName=queue.name))["QueueUrl"]
                    await sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=handles[0], VisibilityTimeout=0
                    )
                while len(handles) < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            app.stop()  # writes the open buffer
    [data] = (await s3_objects(endpoint_url, bucket)).values()
    assert lines(data) == [msgspec.to_builtins(tick(7))]
    assert archiver.stats.records == 1
    assert await queue_counts(endpoint_url, queue.name) == (0, 0)
