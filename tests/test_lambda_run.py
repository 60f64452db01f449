"""``qfan lambda run``: a local event source mapping, run as a real subprocess against the emulator."""

import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest

from .support.aws import raw_client

pytestmark = pytest.mark.one_emulator  # a process around the library (see tests/conftest.py)


async def test_lambda_run_deletes_exactly_what_the_handler_did_not_report(
    endpoint_url: str, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    name = unique_name()
    out = tmp_path / "handled.txt"
    async with raw_client("sqs", endpoint_url) as sqs:
        url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        for i in range(12):
            body = msgspec.json.encode({"id": i, "fail": i in (3, 8)}).decode()
            await sqs.send_message(QueueUrl=url, MessageBody=body)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint_url,
            "QFAN_TEST_QUEUE": name,
            "QFAN_TEST_OUT": str(out),
        }
        command = [
            sys.executable,
            "-m",
            "qfan",
            "lambda",
            "run",
            "tests.apps.lambda_app:app",
            "--queue",
            name,
        ]
        options = ["--batch-size", "5", "--window", "1", "--wait", "1", "--until-empty"]
        with anyio.fail_after(120):
            result = await anyio.run_process([*command, *options], env=env, check=False)
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr
        handled = sorted(int(line) for line in out.read_text().split())
        assert handled == list(range(12))  # each ran once: the reported ones are out of sight for 5 s
        assert "10 deleted, 2 reported" in stderr
        left: list[str] = []
        for _ in range(10):  # the reported ones come back after the backoff; the others were deleted
            answer = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
            left += [m["Body"] for m in answer.get("Messages", [])]
            if len(left) >= 2:
                break
        answer = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        left += [m["Body"] for m in answer.get("Messages", [])]
    assert sorted(msgspec.json.decode(body)["id"] for body in left) == [3, 8]
