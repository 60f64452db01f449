"""The qfan command line, run as a real subprocess against the emulator."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread
import pytest

from qfan import ConfigError, Offload
from qfan._cli._commands import _load_app

from .helpers import AppFactory
from .support.aws import raw_client

pytestmark = pytest.mark.one_emulator  # a process around the library (see tests/conftest.py)


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


@pytest.mark.parametrize(("options", "emulator"), [((), "ministack"), (("--emulator", "moto"), "moto")])
def test_demo_on_the_embedded_emulator(options: tuple[str, ...], emulator: str) -> None:
    result = qfan("demo", "--messages", "40", "--groups", "4", *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"embedded emulator ({emulator}, " in result.stdout
    assert f"the timings below measure qfan with the {emulator} emulator on this machine, not with AWS" in (
        result.stdout
    )
    assert all(
        line.endswith("msg/s (emulator)  OK") for line in result.stdout.splitlines() if "msg/s" in line
    )
    assert "FIFO order held in each of 4 groups: True" in result.stdout
    [offload] = [line for line in result.stdout.splitlines() if line.startswith("offload ")]
    assert offload.endswith("OK")


async def test_receive_reads_offloaded_bodies_from_the_buckets_it_is_given(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    bucket = f"qfan-test-{uuid.uuid4().hex[:12]}"
    app = make_app()
    queue = app.queue(unique_name(), offload=Offload(bucket, always=True))
    async with app:
        await queue.send_many([{"large": "body"}, {"large": "body"}])
    where = ["--endpoint-url", endpoint_url, "--region", "us-east-1"]

    refused = await anyio.to_thread.run_sync(lambda: qfan("receive", queue.name, "--wait", "2", *where))
    assert refused.returncode == 0, refused.stderr
    assert "refused: the queue has no offload policy" in json.loads(refused.stdout)["body"]["error"]

    read = await anyio.to_thread.run_sync(
        lambda: qfan(
            "receive",
            queue.name,
            "--wait",
            "5",
            "--ack",
            "--offload-bucket",
            "other-bucket",
            "--offload-bucket",
            bucket,
            *where,
        )
    )
    assert read.returncode == 0, read.stderr
    record = json.loads(read.stdout)
    assert record["body"] == {"large": "body"}
    assert record["payload"].startswith(f"s3://{bucket}/")
    async with raw_client("s3", endpoint_url) as s3:  # --ack deleted that payload, not the unacked one
        listed = await s3.list_objects_v2(Bucket=bucket)
    assert [f"s3://{bucket}/{item['Key']}" for item in listed["Contents"]] != [record["payload"]]
    assert len(listed["Contents"]) == 1


def test_run_imports_the_app_from_the_current_directory_without_keeping_it_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cli_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import qfan\n\napp = qfan.App('from-cwd')\n")
    monkeypatch.chdir(tmp_path)
    # As under the ``qfan`` console script, whose sys.path has the script's directory, not the current one.
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))])
    before = list(sys.path)
    try:
        app = _load_app(f"{name}:app")
    finally:
        sys.modules.pop(name, None)
    assert app.name == "from-cwd"
    assert sys.path == before
    with pytest.raises(ConfigError, match="cannot import"):
        _load_app(f"{name}_missing:app")
    assert sys.path == before
