"""The qfan command line, run as a real subprocess against the emulator."""

import json
import os
import subprocess
import sys
from collections.abc import Callable


def qfan(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qfan", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = qfan("--help")
    assert result.returncode == 0
    for command in ("local", "send", "receive", "demo"):
        assert command in result.stdout


def test_send_then_receive(endpoint_url: str, unique_name: Callable[..., str]) -> None:
    queue = unique_name()
    where = ["--endpoint-url", endpoint_url, "--region", "us-east-1"]
    sent = qfan("send", queue, '{"order": 7}', "--json", "--create", "-a", "kind=test", *where)
    assert sent.returncode == 0, sent.stderr
    message_id = sent.stdout.strip()

    received = qfan("receive", queue, "-n", "5", "--wait", "2", "--ack", *where)
    assert received.returncode == 0, received.stderr
    [line] = received.stdout.splitlines()
    record = json.loads(line)
    assert record["message_id"] == message_id
    assert record["body"] == {"order": 7}
    assert record["attributes"] == {"kind": "test"}

    again = qfan("receive", queue, "--wait", "0", *where)
    assert again.stdout == ""  # --ack deleted it


def test_errors_are_reported_not_raised(endpoint_url: str, unique_name: Callable[..., str]) -> None:
    result = qfan("receive", unique_name(), "--endpoint-url", endpoint_url, "--region", "us-east-1")
    assert result.returncode == 2
    assert "QueueNotFound" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_against_an_endpoint(endpoint_url: str) -> None:
    result = qfan("demo", "--endpoint-url", endpoint_url, "--region", "us-east-1", "--messages", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo passed" in result.stdout
    assert "0 missing" in result.stdout
    assert "offloaded a " in result.stdout


def test_demo_on_the_embedded_emulator() -> None:
    result = qfan("demo", "--messages", "40", "--groups", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded emulator (moto)" in result.stdout
    assert "FIFO order held in each of 4 groups: True" in result.stdout
    [offload] = [line for line in result.stdout.splitlines() if line.startswith("offload ")]
    assert offload.endswith("OK")
