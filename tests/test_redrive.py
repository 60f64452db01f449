"""``qfan dlq redrive DLQ`` (no ``--to``) as a real subprocess: each dead letter back where it came from.

qfan's own dead letters are copies, which SQS's move task cannot return: they go back by copy-then-delete
to their ``dead-letter-source``. Messages SQS dead-lettered itself go back with SQS's move task, followed
to its end. Neither moto nor MiniStack implements move tasks, so those tests put the fault proxy in front
of the emulator as a stand-in answering ``StartMessageMoveTask`` and ``ListMessageMoveTasks``.
"""

import json
from collections.abc import Callable

import anyio.to_thread
import pytest

import qfan

from .helpers import AppFactory
from .support.proxy import Proxy, respond
from .test_cli import qfan as qfan_cli

pytestmark = pytest.mark.one_transport  # behaviour above the transport (see tests/conftest.py)

REGION = ["--region", "us-east-1"]


async def drain(queue: qfan.Queue[str], expected: int) -> list[qfan.Message[str]]:
    """Receive (and ack) ``expected`` messages from ``queue``, then check nothing more is there."""
    got: list[qfan.Message[str]] = []
    with anyio.fail_after(30):
        while len(got) < expected:
            for message in await queue.receive(10, wait=1):
                got.append(message)
                await message.ack()
    assert await queue.receive(10, wait=0) == []
    return got


async def test_redrive_returns_qfan_dead_letters_to_each_source(
    make_app: AppFactory, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"), str)
    orders = app.queue(unique_name("orders"), str, dead_letter=dead)
    payments = app.queue(unique_name("payments"), str, dead_letter=dead)

    @app.worker(orders, name="orders")
    @app.worker(payments, name="payments")
    async def refuse(body: str) -> None:
        raise qfan.Reject("refused for the test")

    async with app:
        await orders.send_many(["o1", "o2", "o3"], attributes={"keep": "me"})
        await payments.send_many(["p1", "p2"])
        with anyio.fail_after(60):
            await app.run(exit_when_idle=1)
        assert app.stats()["orders"].dead_lettered == 3
        assert app.stats()["payments"].dead_lettered == 2

        result = await anyio.to_thread.run_sync(
            lambda: qfan_cli("dlq", "redrive", dead.name, "--endpoint-url", endpoint_url, *REGION)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"moved 3 qfan dead letter(s) back to {orders.name}" in result.stdout
        assert f"moved 2 qfan dead letter(s) back to {payments.name}" in result.stdout
        assert "move task" not in result.stdout  # nothing of SQS's own to move
        back_in_orders = await drain(orders, 3)
        back_in_payments = await drain(payments, 2)
        assert await dead.receive(10, wait=0) == []
    assert sorted(m.body for m in back_in_orders) == ["o1", "o2", "o3"]
    assert sorted(m.body for m in back_in_payments) == ["p1", "p2"]
    assert all(m.attributes == {"keep": "me"} for m in back_in_orders)  # the reasons are gone
    assert all(m.attributes == {} for m in back_in_payments)


async def test_sqs_dead_letters_without_move_tasks_are_copied_to_the_one_source(
    make_app: AppFactory, endpoint_url: str, emulator_name: str, unique_name: Callable[..., str]
) -> None:
    app = make_app()
    dead = app.queue(unique_name("dlq"), str)
    source = app.queue(unique_name("source"), str, dead_letter=dead)  # the one whose policy names it
    other = app.queue(unique_name("other"), str)
    async with app:
        await dead.send("sqs moved me")  # no dead-letter-source: as SQS's redrive policy leaves it
        await dead.send("qfan copied me", attributes={"dead-letter-source": other.name})
        result = await anyio.to_thread.run_sync(
            lambda: qfan_cli("dlq", "redrive", dead.name, "--endpoint-url", endpoint_url, *REGION)
        )
        assert [m.body for m in await drain(other, 1)] == ["qfan copied me"]
        if emulator_name == "ministack":  # no ListDeadLetterSourceQueues either: no source to copy to
            assert result.returncode == 2, result.stdout + result.stderr
            assert "name the target with --to" in result.stderr
            assert [m.body for m in await drain(dead, 1)] == ["sqs moved me"]  # given back, visible
            return
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SQS has no move tasks here" in result.stdout
        assert [m.body for m in await drain(source, 1)] == ["sqs moved me"]
        assert await dead.receive(10, wait=0) == []


@pytest.mark.parametrize(
    ("ending", "exit_code"),
    [
        ({"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 1}, 0),
        ({"Status": "FAILED", "FailureReason": "CouldNotDetermineMessageSource"}, 2),
    ],
)
async def test_a_move_task_is_followed_to_its_end(
    make_app: AppFactory,
    proxy: Proxy,
    unique_name: Callable[..., str],
    ending: dict[str, object],
    exit_code: int,
) -> None:
    app = make_app(endpoint_url=proxy.endpoint_url)
    dead = app.queue(unique_name("dlq"), str)
    app.queue(unique_name("source"), str, dead_letter=dead)
    async with app:
        await dead.send("sqs moved me")
        dead_arn = (await dead.declare()).arn
    proxy.inject("StartMessageMoveTask", respond({"TaskHandle": "task-1"}))
    running = {"TaskHandle": "task-1", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 0}
    proxy.inject("ListMessageMoveTasks", respond({"Results": [running]}), times=2)
    last = {"ApproximateNumberOfMessagesToMove": 1, "SourceArn": dead_arn, **ending}
    proxy.inject("ListMessageMoveTasks", respond({"Results": [last]}))
    result = await anyio.to_thread.run_sync(
        lambda: qfan_cli(
            "dlq", "redrive", dead.name, "--endpoint-url", proxy.endpoint_url, *REGION, "--poll", "0.1"
        )
    )
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert "started SQS message move task for 1 message(s) SQS dead-lettered: task-1" in result.stdout
    assert result.stdout.count("move task RUNNING: 0 of ? moved") == 1  # progress printed on change only
    [start] = proxy.calls("StartMessageMoveTask")
    assert json.loads(start.body) == {"SourceArn": dead_arn}  # each message back to its own source
    assert len(proxy.calls("ListMessageMoveTasks")) == 3
    if exit_code == 0:
        assert "move task COMPLETED: 1 of 1 moved" in result.stdout
    else:
        assert "FAILED after moving 0 message(s): CouldNotDetermineMessageSource" in result.stderr
        async with make_app() as again:  # what the task did not move is still there, visible
            left = again.queue(dead.name, str, create=False)
            assert [m.body for m in await drain(left, 1)] == ["sqs moved me"]
