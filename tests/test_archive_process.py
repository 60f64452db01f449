"""``qfan archive`` as a real process: killed with SIGKILL mid-buffer it loses nothing; SIGTERM writes the
open buffer and exits 0."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from .helpers import AppFactory
from .support.workers import ROOT
from .test_archive import Tick, lines, queue_counts, s3_objects, tick

pytestmark = [pytest.mark.one_transport, pytest.mark.one_emulator]  # processes around the library


def start_archive(
    endpoint_url: str, queue: str, bucket: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "qfan", "archive", queue, "--bucket", bucket, "--prefix", "datos/"]
    command += ["--error-prefix", "errores/", "--progress-interval", "0.2", "--endpoint-url", endpoint_url]
    command += ["--region", "us-east-1", *extra]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=out)


async def wait_for_line(log: Path, pattern: str, limit: float = 60) -> re.Match[str]:
    with anyio.fail_after(limit):
        while True:
            found = re.search(pattern, log.read_text() if log.exists() else "")  # noqa: ASYNC240 - a tiny log
            if found:
                return found
            await anyio.sleep(0.1)


async def test_sigkill_mid_buffer_loses_nothing_and_sigterm_writes_the_open_buffer(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    app = make_app()
    bucket, queue = unique_name("arch"), app.queue(unique_name(), Tick, visibility_timeout=2)
    async with app:
        await queue.send_many([tick(i) for i in range(30)])
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    process = start_archive(endpoint_url, queue.name, bucket, first, "--max-interval", "600")
    try:
        await wait_for_line(first, r"objects=0 records=0 bytes=0 errors=0 buffered=30 ")
        process.kill()  # mid-buffer: nothing written, nothing deleted, no chance to do either
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert await s3_objects(endpoint_url, bucket) == {}
    assert sum(await queue_counts(endpoint_url, queue.name)) == 30
    # A new archiver gets them back once their visibility runs out, and writes them on SIGTERM.
    process = start_archive(endpoint_url, queue.name, bucket, second, "--max-interval", "600")
    try:
        await wait_for_line(second, r"buffered=30 ")
        process.send_signal(signal.SIGTERM)
        returncode = await anyio.to_thread.run_sync(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
    output = second.read_text()
    assert returncode == 0, output
    assert re.search(r"qfan: stopped: objects=1 records=30 bytes=\d+ errors=0 buffered=0", output), output
    [(key, data)] = (await s3_objects(endpoint_url, bucket)).items()
    assert key.startswith("datos/")
    assert key.endswith(".jsonl")
    assert sorted(r["TICKER_SYMBOL"] for r in lines(data)) == [tick(i).TICKER_SYMBOL for i in range(30)]
    assert await queue_counts(endpoint_url, queue.name) == (0, 0)
