"""Worker processes (``qfan run``) SIGKILLed at random points, repeatedly, while a producer keeps sending.

Two worker processes share the queue; a seeded schedule kills one of them (no chance to release or ack
anything) and starts a replacement. After the producer and the killing stop, one last worker drains the
queue: every message must have been processed; duplicates (killed after handling, before the ack) are
counted, as at-least-once allows.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import anyio
import pytest

import qfan

from ..support.emulators import Emulator
from ..support.workers import handled, start_recording_worker
from .report import Row, Sizes, record

pytestmark = pytest.mark.chaos


async def test_workers_killed_at_random_lose_nothing(
    chaos_server: Emulator, sizes: Sizes, seed: int, tmp_path: Path
) -> None:
    total, name, out = sizes.crash_messages, f"crash-{uuid.uuid4().hex[:10]}", tmp_path / "handled.txt"
    schedule = random.Random(seed)
    endpoint = chaos_server.endpoint_url
    app = qfan.App("chaos-producer", endpoint_url=endpoint, region="us-east-1")
    queue = app.queue(name, visibility_timeout=2)
    workers: list[subprocess.Popen[bytes]] = []
    kills = 0
    handled_at_kills: list[int] = []
    sent_at_kills: list[int] = []
    sent = 0
    started = time.monotonic()

    # Pace the producer to span the kill schedule (kills come every 2.25 s on average), so that messages keep
    # arriving while workers die.
    pause = sizes.crash_kills * 2.25 / max(1, total // 10)

    async def produce() -> None:
        for start in range(0, total, 10):
            nonlocal sent
            await queue.send_many([{"id": i} for i in range(start, min(total, start + 10))])
            sent = min(total, start + 10)
            await anyio.sleep(pause)

    try:
        async with app:
            await queue.declare()
            workers = [start_recording_worker(endpoint, name, out, sleep=0.05) for _ in range(2)]
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                for _ in range(sizes.crash_kills):
                    # A worker takes about a second to start: most kills then find it receiving or handling.
                    await anyio.sleep(schedule.uniform(1.0, 3.5))
                    victim = schedule.randrange(len(workers))
                    workers[victim].kill()  # SIGKILL, wherever it is: receiving, handling, acking
                    await anyio.to_thread.run_sync(workers[victim].wait)
                    kills += 1
                    handled_at_kills.append(sum(handled(out).values()))
                    sent_at_kills.append(sent)
                    workers[victim] = start_recording_worker(endpoint, name, out, sleep=0.05)
            with anyio.move_on_after(300):
                while len(handled(out)) < total:  # noqa: ASYNC110 - polling a file the workers write
                    await anyio.sleep(0.2)
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                await anyio.to_thread.run_sync(worker.wait, 60)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    counts = handled(out)
    lost = sorted(set(range(total)) - set(counts))
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    record(
        Row(
            f"crash: {kills} SIGKILLs of 2 worker processes",
            total,
            kills,
            len(lost),
            duplicated,
            0,
            time.monotonic() - started,
            {"handled_at_each_kill": handled_at_kills, "sent_at_each_kill": sent_at_kills},
        )
    )
    assert kills == sizes.crash_kills
    assert not lost, lost[:50]
    assert set(counts) == set(range(total))
