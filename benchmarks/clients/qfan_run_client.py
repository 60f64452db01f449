"""qfan deployed as users run it: ``qfan run benchmarks.apps.run_consumer:app --processes N``.

The ``qfan-run-1p`` and ``qfan-run-2p`` rows consume the same backlog with one and with two worker processes
under the supervisor, to show how throughput scales with cores, on asyncio's event loop; ``qfan-run-uvloop``
is the one-process row on uvloop (``qfan[speed]``; n/a when it is not installed). Each worker process
measures its own CPU from its first message to its last; the row's CPU is their sum, its time from the first
message handled by any process to the last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..common import Job, Outcome, payload

UNAVAILABLE = {
    "publish": "a worker row: see the qfan row",
    "e2e": "consume shows the scaling",
    "fanout": "a worker row",
    "rpc": "a worker row",
    "offload": "a worker row",
}
_ROOT = Path(__file__).resolve().parents[2]
_PROCESSES = {"qfan-run-1p": 1, "qfan-run-2p": 2, "qfan-run-uvloop": 1}


def consume(job: Job) -> Outcome:
    import anyio

    if job.client == "qfan-run-uvloop":
        import uvloop  # noqa: F401 - n/a without it (the child process reports a missing module)

    with tempfile.TemporaryDirectory() as out:
        anyio.run(_preload, job)
        env = {
            **os.environ,
            "PYTHONPATH": str(_ROOT),
            "BENCH_QUEUE": job.queue_name,
            "BENCH_OUT": out,
            "BENCH_CONCURRENCY": str(job.concurrency * 2),
            **({"AWS_ENDPOINT_URL": job.endpoint_url} if job.endpoint_url else {}),
            "AWS_DEFAULT_REGION": job.region,
            "QFAN_UVLOOP": "1" if job.client == "qfan-run-uvloop" else "0",
        }
        command = [sys.executable, "-m", "qfan", "run", "benchmarks.apps.run_consumer:app"]
        command += ["--processes", str(_PROCESSES[job.client]), "--log-level", "WARNING"]
        process = subprocess.Popen(command, cwd=_ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            anyio.run(_drained, job)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
        reports = [json.loads(p.read_text()) for p in Path(out).glob("*.json")]
    busy = [r for r in reports if r["ids"]]
    ids = [i for r in reports for i in r["ids"]]
    seconds = max(r["last"] for r in busy) - min(r["first"] for r in busy)
    cpu = sum(r["cpu_last"] - r["cpu_first"] for r in busy)
    shares = ", ".join(str(len(r["ids"])) for r in busy)
    notes = f"{len(busy)} of {len(reports)} worker processes handled messages ({shares})"
    return Outcome(seconds=seconds, cpu_seconds=cpu, messages=job.messages, ids=ids, notes=notes)


def _app(job: Job) -> Any:
    import qfan

    return qfan.App("bench", endpoint_url=job.endpoint_url, region=job.region)


async def _preload(job: Job) -> None:
    app = _app(job)
    async with app:
        await app.queue(job.queue_name).send_many([payload(i, job.body_bytes) for i in range(job.messages)])


async def _drained(job: Job) -> None:
    """Until the queue holds nothing, visible or in flight (every message handled and deleted)."""
    import anyio

    app = _app(job)
    queue = app.queue(job.queue_name)
    counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    async with app:
        url = (await queue.declare()).url
        while True:
            await anyio.sleep(0.2)
            attributes = await app.connection.sqs.get_queue_attributes(url)
            if all(attributes.get(name) == "0" for name in counts):
                return
