"""A backlog far bigger than a worker should hold: its RSS must stay flat while it works through it.

The backlog (200,000 messages at full size) is seeded with a plain AWS client; a ``qfan run`` worker process
with a slow handler then works on it while its resident set size is sampled from ``/proc/<pid>/status``. A
worker holds at most ``concurrency + prefetch`` messages, so memory must not grow with the backlog. The
curve goes into the summary JSON.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import anyio
import pytest

from ..support.aws import raw_client
from ..support.workers import handled, start_recording_worker
from .report import Row, Sizes, record

pytestmark = pytest.mark.chaos

MIB = 1024 * 1024
GROWTH_LIMIT = 32 * MIB  # generous: allocator noise, not a leak, must fit under it; a backlog would not


def rss(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return None if line is None else int(line.split()[1]) * 1024


async def seed_backlog(endpoint_url: str, name: str, total: int) -> str:
    async with raw_client("sqs", endpoint_url) as sqs:
        url: str = (await sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "2"}))["QueueUrl"]
        starts = iter(range(0, total, 10))

        async def sender() -> None:
            for start in starts:
                entries = [
                    {"Id": str(i), "MessageBody": f'{{"id": {i}, "pad": "{"p" * 200}"}}'}
                    for i in range(start, min(total, start + 10))
                ]
                answer = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
                assert not answer.get("Failed"), answer["Failed"]

        async with anyio.create_task_group() as tg:
            for _ in range(16):
                tg.start_soon(sender)
    return url


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from Linux /proc")
async def test_worker_rss_stays_flat_over_a_big_backlog(
    backlog_server: tuple[str, str], sizes: Sizes, tmp_path: Path
) -> None:
    server, endpoint_url = backlog_server
    total, name, out = sizes.memory_backlog, f"backlog-{uuid.uuid4().hex[:10]}", tmp_path / "handled.txt"
    started = time.monotonic()
    await seed_backlog(endpoint_url, name, total)
    seeded = time.monotonic() - started
    worker = start_recording_worker(endpoint_url, name, out, sleep=0.02)
    curve: list[tuple[float, int]] = []
    try:
        begin = time.monotonic()
        while (elapsed := time.monotonic() - begin) < sizes.memory_window:
            sample = rss(worker.pid)
            assert worker.poll() is None, "the worker died"
            assert sample is not None
            curve.append((round(elapsed, 2), sample))
            await anyio.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        returncode = await anyio.to_thread.run_sync(worker.wait, 60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    processed = sum(handled(out).values())
    warm = [s for t, s in curve if t >= sizes.memory_window / 4]
    growth = max(warm) - warm[0]
    record(
        Row(
            f"memory: {total:,} backlog, slow handler ({server})",
            processed,
            0,
            0,
            0,
            0,
            time.monotonic() - started,
            {
                "backlog": total,
                "server": server,
                "seed_seconds": round(seeded, 1),
                "processed_in_window": processed,
                "rss_mib_after_warmup": round(warm[0] / MIB, 1),
                "rss_mib_max": round(max(s for _, s in curve) / MIB, 1),
                "growth_after_warmup_mib": round(growth / MIB, 2),
                "curve_seconds_rss_bytes": curve,
            },
        )
    )
    assert returncode == 0
    assert processed > 0
    assert growth < GROWTH_LIMIT, f"RSS grew {growth / MIB:.1f} MiB after warm-up"
