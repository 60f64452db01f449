"""The embedded emulator: same code path as AWS, only the endpoint differs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import qfan

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
