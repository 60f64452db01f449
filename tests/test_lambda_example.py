"""examples/lambda_thumbnails: its SAM template passes cfn-lint, and the function runs under
``qfan lambda run`` against the emulator, fed through its SNS fanout."""

import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest
from cfnlint.api import lint_all

from .helpers import AppFactory

pytestmark = [pytest.mark.one_transport, pytest.mark.one_emulator]  # processes around the library

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lambda_thumbnails"


class ImageUploaded(msgspec.Struct):
    key: str
    kind: str
    size: int


def problems(template: str) -> list[str]:
    """cfn-lint's errors and warnings (what fails ``cfn-lint`` on the command line; not its hints)."""
    return [str(match) for match in lint_all(template) if match.rule.id[0] in "EW"]


def test_the_sam_template_passes_cfn_lint() -> None:
    assert problems((EXAMPLE / "template.yaml").read_text()) == []


def test_cfn_lint_catches_a_broken_template() -> None:  # the check above can fail
    template = (EXAMPLE / "template.yaml").read_text()
    assert problems(template.replace("Handler: app.handler", "Handlr: app.handler")) != []  # SAM resource
    assert problems(template.replace("MessageRetentionPeriod: 345600", "MessageRetentionPeriod: 1")) != []


async def test_the_example_runs_under_qfan_lambda_run(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str
) -> None:
    name, dlq, topic_name = unique_name("thumbnails"), unique_name("thumbnails-dlq"), unique_name("images")
    setup = make_app()
    dead = setup.queue(dlq)
    queue = setup.queue(name, ImageUploaded, dead_letter=dead, max_receives=5)
    images = setup.topic(topic_name, ImageUploaded)
    setup.subscribe(images, queue)
    async with setup:
        await images.publish_many(
            [
                ImageUploaded("a.jpg", "jpeg", 5_000_000),
                ImageUploaded("b.png", "png", 1),
                ImageUploaded("c.gif", "gif", 2),
            ]
        )
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint_url,
            "THUMBNAILS_QUEUE": name,
            "THUMBNAILS_DLQ": dlq,
        }
        command = [sys.executable, "-m", "qfan", "lambda", "run", "examples.lambda_thumbnails.app:app"]
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [*command, "--queue", name, "--wait", "2", "--window", "1", "--until-empty"],
                env=env,
                check=False,
                cwd=EXAMPLE.parent.parent,
            )
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr
        assert "3 deleted, 0 reported" in stderr
        for thumbnail in ("thumbnails/a-128.jpeg", "thumbnails/a-512.jpeg", "thumbnails/b-128.png"):
            assert thumbnail in stderr
        [rejected] = await dead.receive(wait=5)
        assert await queue.receive(wait=1) == []
    assert rejected.attributes["dead-letter-reason"] == "rejected: cannot thumbnail gif"
    assert isinstance(rejected.body, dict)
    assert rejected.body["key"] == "c.gif"
