"""``examples/firehose_lab.py``: its SQL answers checked against the records it published, over the test
emulators, and the script itself as README runs it (embedded emulator)."""

import importlib.util
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .support.workers import ROOT

pytestmark = pytest.mark.one_emulator  # a process around the library (see tests/conftest.py)

pytest.importorskip("duckdb")
_spec = importlib.util.spec_from_file_location("firehose_lab", ROOT / "examples" / "firehose_lab.py")
assert _spec is not None
assert _spec.loader is not None
lab: Any = importlib.util.module_from_spec(_spec)
sys.modules["firehose_lab"] = lab
_spec.loader.exec_module(lab)


def expected_sectors(records: list[Any]) -> list[tuple[str, int, float, float]]:
    by_sector: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        by_sector[record.SECTOR].append(record)
    return [
        (sector, len(rs), sum(r.PRICE for r in rs) / len(rs), sum(r.CHANGE for r in rs) / len(rs))
        for sector, rs in sorted(by_sector.items())
    ]


def expected_movers(records: list[Any]) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for record in records:
        totals[record.TICKER_SYMBOL] += record.CHANGE
    return sorted(totals.items(), key=lambda item: (-abs(round(item[1], 2)), item[0]))[:5]


async def test_lab_sql_matches_what_was_published(endpoint_url: str, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    result = await lab.run_lab(200, workdir=tmp_path, endpoint_url=endpoint_url, max_interval=0.5)
    hours = {f"datos/{t:%Y/%m/%d/%H}/" for t in (before, datetime.now(UTC) + timedelta(seconds=1))}
    assert result.keys
    assert all(re.fullmatch(r"datos/\d{4}/\d\d/\d\d/\d\d/[^/]+\.jsonl\.gz", key) for key in result.keys)
    assert {key.rsplit("/", 1)[0] + "/" for key in result.keys} <= hours
    sectors = expected_sectors(result.records)
    assert [(s, n) for s, n, _, _ in result.sectors] == [(s, n) for s, n, _, _ in sectors]
    for (_, _, price, change), (_, _, want_price, want_change) in zip(result.sectors, sectors, strict=True):
        assert price == pytest.approx(want_price, abs=0.006)
        assert change == pytest.approx(want_change, abs=0.00006)
    movers = expected_movers(result.records)
    assert [m[0] for m in result.movers] == [m[0] for m in movers]
    assert [m[2] for m in result.movers] == pytest.approx([m[1] for m in movers], abs=0.006)


def test_the_script_prints_the_layout_and_the_analysis() -> None:
    run = subprocess.run(
        [sys.executable, "examples/firehose_lab.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert re.search(r"archived 400 ticker records; partition layout:\n  s3://firehose-lab/datos/\d{4}/", out)
    records = lab.demo_records(400)
    for sector, count, price, change in expected_sectors(records):
        line = re.search(rf"^  {sector} +(\d+) +([\d.]+) +(-?[\d.]+)$", out, re.MULTILINE)
        assert line, out
        assert int(line[1]) == count
        assert float(line[2]) == pytest.approx(price, abs=0.006)
        assert float(line[3]) == pytest.approx(change, abs=0.00006)
    printed = re.findall(r"^  (\w+) +\w+ +([+-][\d.]+)  over", out, re.MULTILINE)
    assert [symbol for symbol, _ in printed] == [symbol for symbol, _ in expected_movers(records)]
