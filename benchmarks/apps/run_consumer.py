"""The worker of the ``qfan-run-1p``/``qfan-run-2p`` rows: ``qfan run benchmarks.apps.run_consumer:app``.

Configured by environment (``BENCH_QUEUE``, ``BENCH_OUT``, ``BENCH_CONCURRENCY`` and the ``AWS_*`` variables).
Each process measures itself from its first handled message to its last (process CPU, all threads), so
interpreter start-up and the idle polls at the end are not counted, and writes ``BENCH_OUT/<pid>.json`` on
shutdown: what it handled, when, and the CPU it spent.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import qfan

app = qfan.App("bench-run")
queue = app.queue(os.environ.get("BENCH_QUEUE", "bench"))
_seen: list[int] = []
_marks: dict[str, float] = {}


@app.worker(queue, concurrency=int(os.environ.get("BENCH_CONCURRENCY", "32")), receive_wait=1)
async def handle(body: dict[str, Any]) -> None:
    if not _seen:
        _marks["first"], _marks["cpu_first"] = time.time(), time.process_time()
    _seen.append(body["bid"])
    _marks["last"], _marks["cpu_last"] = time.time(), time.process_time()


@app.on_shutdown
async def report() -> None:
    out = Path(os.environ.get("BENCH_OUT", "."))
    (out / f"{os.getpid()}.json").write_text(json.dumps({"ids": _seen, **_marks}))
