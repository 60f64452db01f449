"""The embedded emulator: same code path as AWS, only the endpoint differs."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import qfan
from qfan._emulators import Recipe, running_process

ROOT = Path(__file__).parent.parent


async def test_local_points_apps_at_the_embedded_emulator() -> None:
    before = os.environ.get("AWS_ENDPOINT_URL")
    async with qfan.local() as emulator:
        assert emulator.endpoint_url.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == emulator.endpoint_url
        app = qfan.App("local")  # no endpoint given: the standard variable points at the emulator
        queue = app.queue("local-test")
        async with app:
            await queue.send({"hello": "local"})
            [message] = await queue.receive(wait=5)
            assert message.body == {"hello": "local"}
    assert os.environ.get("AWS_ENDPOINT_URL") == before


async def test_local_runs_moto_in_this_process() -> None:
    async with qfan.local(set_environment=False) as emulator:
        assert (emulator.name, emulator.pid, emulator.log_path) == ("moto", None, None)
        assert emulator.account_id == "123456789012"
        assert emulator.environment["AWS_ENDPOINT_URL"] == emulator.endpoint_url


async def test_local_on_a_taken_port_fails_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(qfan.EmulatorUnavailable, match=r"cannot listen on 127\.0\.0\.1:"):
            async with qfan.local(port=taken.getsockname()[1]):
                pass


# Plays an emulator that loses the race for its first port, then serves 200 on every path.
_LOSES_FIRST_PORT = """
import http.server, pathlib, sys
port, marker = int(sys.argv[1]), pathlib.Path(sys.argv[2]) / "tried"
if not marker.exists():
    marker.touch()
    sys.exit("OSError: [Errno 98] Address already in use")
http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def test_process_emulator_is_started_again_after_losing_its_port() -> None:
    recipe = Recipe("flaky", (sys.executable, "-c", _LOSES_FIRST_PORT, "{port}", "{workdir}"), "/", "0" * 12)
    with running_process(recipe, region="eu-west-1", timeout=20) as emulator:
        assert emulator.pid is not None
        assert emulator.log_path is not None
        os.kill(emulator.pid, 0)  # alive, and a process of its own
        assert emulator.pid != os.getpid()
        assert "--- attempt 2 on port" in emulator.log_path.read_text()
        assert emulator.environment["AWS_DEFAULT_REGION"] == "eu-west-1"
        workdir = emulator.log_path.parent
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(emulator.pid, 0)


def test_process_emulator_that_exits_reports_its_log() -> None:
    exits = "print('no such service'); raise SystemExit(3)"
    recipe = Recipe("broken", (sys.executable, "-c", exits), "/", "")
    with (
        pytest.raises(qfan.EmulatorUnavailable, match=r"(?s)exited with status 3.*no such service"),
        running_process(recipe, timeout=20),
    ):
        pass


def test_missing_emulator_package_is_reported() -> None:
    recipe = Recipe("absent", ("true",), "/", "", requires="qfan_no_such_module", install_hint="pip it")
    with (
        pytest.raises(qfan.EmulatorUnavailable, match="absent is not installed: pip it"),
        running_process(recipe),
    ):
        pass


def test_quickstart_in_readme_is_the_example_and_runs() -> None:
    example = (ROOT / "examples" / "quickstart.py").read_text()
    assert example in (ROOT / "README.md").read_text()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "received 101 orders"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_booking_example_keeps_each_customer_in_order() -> None:
    assert run_example("booking_fifo.py").strip() == "80 bookings for 8 customers, each in order: True"


def test_image_workers_example() -> None:
    lines = run_example("image_workers.py").splitlines()
    assert lines[:5] == [
        "faces a.jpg",
        "faces b.gif",
        "metadata a.jpg (receive #1)",
        "metadata b.gif (receive #1)",
        "thumbnail a.jpg",
    ]
    assert "dead_lettered=1" in lines[5]


def test_image_fanout_example() -> None:
    lines = run_example("image_fanout.py").splitlines()
    assert lines[-1] == "published 12 events: {'faces': 12, 'metadata': 12, 'thumbnails': 8}"
    assert sum(line.startswith("unchanged") for line in lines) == 11  # declared when the app opened


def test_priority_jobs_example_shows_the_weighted_shares() -> None:
    lines = run_example("priority_jobs.py").splitlines()
    assert lines[0] == "150 jobs queued on each level; weights {'high': 8, 'normal': 3, 'low': 1}"
    last = lines[-1]
    assert last.startswith("first 225 jobs (every level had backlog): ")
    shares = dict(re.findall(r"(high|normal|low) +(\d+)%", last.split(":")[1]))
    assert abs(int(shares["high"]) - 67) <= 10, last
    assert abs(int(shares["normal"]) - 25) <= 4, last
    assert abs(int(shares["low"]) - 8) <= 2, last


def test_async_web_example_answers_through_the_queues() -> None:
    lines = run_example("async_web.py", "--self-test", "20", "--port", "0").splitlines()
    assert lines[0] == "GET /resize?key=bad.jpg&width=-1 -> 422 ValueError: width must be positive, got -1"
    assert lines[1].startswith("20 web requests answered through the queues: p50 ")
