"""``qfan run --processes N``: a supervisor over N worker processes, as real subprocesses on the emulator."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from qfan._cli._supervisor import child_argv, processes_option

from .helpers import AppFactory
from .support.workers import handled, start_recording_worker
from .test_cli import qfan as qfan_cli
from .test_worker_process import send_items, wait_for

pytestmark = [pytest.mark.one_transport, pytest.mark.one_emulator]  # processes around the library


def pids_of(path: Path) -> dict[int, int]:
    """id -> pid of the process that handled it (the last one, if several)."""
    if not path.exists():
        return {}
    return {int(i): int(p) for i, p in (line.split() for line in path.read_text().splitlines() if line)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("argv", "index", "expected"),
    [
        (["run", "m:app", "--processes", "2"], 1, ["run", "m:app"]),
        (["run", "m:app", "--processes=auto", "--worker", "w"], 0, ["run", "m:app", "--worker", "w"]),
        (
            ["run", "m:app", "--metrics-port", "9100", "--processes", "3"],
            2,
            ["run", "m:app", "--metrics-port", "9102"],
        ),
        (["run", "m:app", "--metrics-port=9100"], 1, ["run", "m:app", "--metrics-port", "9101"]),
    ],
)
def test_child_arguments(argv: list[str], index: int, expected: list[str]) -> None:
    assert child_argv(argv, index) == expected


def test_processes_option() -> None:
    assert processes_option("3") == 3
    assert processes_option("auto") >= 1
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="positive number or 'auto'"):
            processes_option(bad)


async def test_two_processes_share_the_queue_and_stop_together(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    name, out, pids = unique_name(), tmp_path / "handled.txt", tmp_path / "pids.txt"
    await send_items(make_app, name, 80)  # 8 held per process at most, 0.5 s each: one process can't take all
    process = start_recording_worker(
        endpoint_url, name, out, sleep=0.5, options=["--processes", "2"], pids=pids
    )
    try:
        await wait_for(lambda: len(handled(out)) >= 80, limit=120)
        children = set(pids_of(pids).values())
        assert len(children) == 2, children
        assert process.pid not in children  # the supervisor runs no handler itself
        process.send_signal(signal.SIGTERM)
        returncode = await anyio.to_thread.run_sync(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
    log = out.with_suffix(".log").read_text()
    assert returncode == 0, log
    assert "stopping the worker processes" in log
    assert log.count("stopping gracefully") == 2, log  # each child drained on the forwarded SIGTERM
    assert not any(alive(pid) for pid in children)
    assert set(handled(out)) == set(range(80))


async def test_a_killed_worker_process_is_restarted_and_nothing_is_lost(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    name, out, pids = unique_name(), tmp_path / "handled.txt", tmp_path / "pids.txt"
    log = out.with_suffix(".log")
    await send_items(make_app, name, 40)
    process = start_recording_worker(
        endpoint_url, name, out, sleep=0.3, options=["--processes", "2"], pids=pids
    )
    try:
        await wait_for(lambda: len(pids_of(pids)) >= 3, limit=60)
        victim = next(iter(pids_of(pids).values()))
        os.kill(victim, signal.SIGKILL)  # its held messages come back after the visibility timeout (2 s)
        await wait_for(lambda: log.read_text().count("started (pid") >= 3, limit=60)  # the restart
        app = make_app()
        queue = app.queue(name, visibility_timeout=2)
        async with app:  # more work, for the survivor and the restarted process
            await queue.send_many([{"id": i} for i in range(40, 120)])
        await wait_for(lambda: len(handled(out)) >= 120, limit=120)
        survivors = set(pids_of(pids).values()) - {victim}
        process.send_signal(signal.SIGTERM)
        returncode = await anyio.to_thread.run_sync(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert f"exited {-signal.SIGKILL}" in text, text
    assert "restarting it in" in text
    assert len(survivors) == 2, text  # the other process, and the one started in the victim's place
    assert returncode == 0, text
    assert set(handled(out)) == set(range(120))


def test_a_configuration_error_stops_the_supervisor_without_restarts() -> None:
    result = qfan_cli("run", "tests.apps.no_such_module:app", "--processes", "2", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "configuration error" in result.stderr
    assert "restarting" not in result.stderr
