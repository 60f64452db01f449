"""``qfan run`` of ``tests/apps/recording_worker.py`` as a real subprocess, and what it recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def start_recording_worker(
    endpoint_url: str,
    queue: str,
    out: Path,
    *,
    sleep: float,
    drain_timeout: float = 20,
    extra: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``qfan run tests.apps.recording_worker:app`` on this tree, appending handled ids to ``out``.

    Its output goes to ``out.log`` (a file, not a pipe: nothing can block or leak).
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "AWS_ENDPOINT_URL": endpoint_url,
        "QFAN_TEST_QUEUE": queue,
        "QFAN_TEST_OUT": str(out),
        "QFAN_TEST_SLEEP": str(sleep),
    }
    command = [sys.executable, "-m", "qfan", "run", "tests.apps.recording_worker:app"]
    command += ["--drain-timeout", str(drain_timeout), *(extra or [])]
    with out.with_suffix(".log").open("ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def handled(out: Path) -> Counter[int]:
    """How many times the worker(s) handled each id so far."""
    if not out.exists():
        return Counter()
    return Counter(int(line) for line in out.read_text().split())
