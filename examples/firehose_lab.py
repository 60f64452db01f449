"""The seed's Kinesis Data Firehose lab on qfan: ticker records -> SNS -> queue -> S3 partitions -> SQL.

A producer publishes stock-ticker records like the course's demo data to an SNS topic; a queue subscribed to
it is archived by ``app.archive`` into gzipped JSON Lines under ``datos/YYYY/MM/dd/HH/`` (records that cannot
be archived would go under ``errores/``); then DuckDB runs the course's analysis over the objects: average
price and change per sector, and the top movers. It prints the partition layout it wrote.

Run it on the embedded emulator, from a clone of the repository:

    python3 -m venv .venv && .venv/bin/pip install -e '.[lab]' && .venv/bin/python examples/firehose_lab.py
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec

import qfan

BUCKET = "firehose-lab"
SECTORS = {
    "FINANCIAL": ["QXZ", "WFC", "JPM", "BAC"],
    "TECHNOLOGY": ["AMZN", "MSFT", "NVDA", "CRM"],
    "ENERGY": ["XOM", "CVX", "BP"],
    "HEALTHCARE": ["PFE", "JNJ", "MRK"],
    "RETAIL": ["WMT", "TGT", "KSS"],
}


class Ticker(msgspec.Struct):
    """One record of the course's demo stream."""

    TICKER_SYMBOL: str
    SECTOR: str
    CHANGE: float
    PRICE: float


def demo_records(count: int, seed: int = 2026) -> list[Ticker]:
    """Like the Firehose console's demo data: a random walk per symbol (seeded: the same every run)."""
    rng = random.Random(seed)
    prices = {s: round(rng.uniform(20, 400), 2) for symbols in SECTORS.values() for s in symbols}
    sector_of = {s: sector for sector, symbols in SECTORS.items() for s in symbols}
    records = []
    for _ in range(count):
        symbol = rng.choice(sorted(prices))
        change = round(rng.gauss(0, prices[symbol] * 0.01), 2)
        prices[symbol] = max(1.0, round(prices[symbol] + change, 2))
        records.append(Ticker(symbol, sector_of[symbol], change, prices[symbol]))
    return records


SECTOR_SQL = """
SELECT SECTOR, count(*) AS records, round(avg(PRICE), 2) AS avg_price, round(avg(CHANGE), 4) AS avg_change
FROM read_json_auto(?) GROUP BY SECTOR ORDER BY SECTOR
"""
MOVERS_SQL = """
SELECT TICKER_SYMBOL, SECTOR, round(sum(CHANGE), 2) AS total_change, count(*) AS records
FROM read_json_auto(?) GROUP BY TICKER_SYMBOL, SECTOR
ORDER BY abs(sum(CHANGE)) DESC, TICKER_SYMBOL LIMIT 5
"""


@dataclass
class LabResult:
    """What the lab wrote and what the SQL said."""

    records: list[Ticker]
    keys: list[str]
    sectors: list[tuple[Any, ...]]
    movers: list[tuple[Any, ...]]


async def run_lab(
    count: int = 400, *, workdir: Path, endpoint_url: str | None = None, max_interval: float = 1.0
) -> LabResult:
    """Publish ``count`` records, archive them to S3, download the objects into ``workdir``, query them."""
    import duckdb  # the lab's extra: pip install 'qfan[lab]'

    app = qfan.App("firehose-lab", endpoint_url=endpoint_url)
    stream = app.topic("ticker-stream", Ticker)
    queue = app.queue("ticker-archive", Ticker)
    app.subscribe(stream, queue)
    # Firehose: buffer 1-128 MiB / 60-900 s; small here so the lab shows several objects in a second.
    sink = qfan.S3Archive(
        BUCKET,
        prefix="datos/",
        error_prefix="errores/",
        max_bytes=8 * 1024,
        max_interval=max_interval,
        compression="gzip",
    )
    archiver = app.archive(queue, sink=sink, receive_wait=1)
    records = demo_records(count)
    async with app:
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            await stream.publish_many(records)
            with anyio.fail_after(60):
                while archiver.stats.records + archiver.stats.error_records < count:  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            app.stop()
        s3 = await app.connection.s3()
        keys = list(archiver.stats.recent_keys)
        for key in keys:  # the objects, downloaded where DuckDB reads them
            stored = await s3.get_object(BUCKET, key, max_size=128 << 20)
            target = workdir / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(stored.data or b"")
    pattern = str(workdir / "datos" / "**" / "*.jsonl.gz")
    with duckdb.connect() as db:
        sectors = db.execute(SECTOR_SQL, [pattern]).fetchall()
        movers = db.execute(MOVERS_SQL, [pattern]).fetchall()
    return LabResult(records, keys, sectors, movers)


def layout(keys: list[str]) -> list[str]:
    """The partitions written and how many objects each holds."""
    partitions = Counter(key.rsplit("/", 1)[0] + "/" for key in keys)
    return [f"s3://{BUCKET}/{p}  {n} object(s)" for p, n in sorted(partitions.items())]


async def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with qfan.local():
            result = await run_lab(workdir=Path(workdir))
    print(f"archived {len(result.records)} ticker records; partition layout:")
    for line in layout(result.keys):
        print("  " + line)
    print("\naverage price and change per sector:")
    print(f"  {'SECTOR':<12}{'records':>8}{'avg_price':>11}{'avg_change':>12}")
    for sector, records, price, change in result.sectors:
        print(f"  {sector:<12}{records:>8}{price:>11.2f}{change:>12.4f}")
    print("\ntop movers (total change):")
    for symbol, sector, total, records in result.movers:
        print(f"  {symbol:<6}{sector:<12}{total:>+9.2f}  over {records} records")


if __name__ == "__main__":
    anyio.run(main)
