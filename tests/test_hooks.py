"""Pipeline hooks see every message once, on every path: sends, publishes, forwards, receives, settles."""

from collections.abc import Callable
from typing import Any

import pytest

import qfan
from qfan._worker._settle import Action, DeadLetter, Delete

from .helpers import AppFactory
from .test_workers import run_until


class Recorder(qfan.PipelineHooks):
    def __init__(self) -> None:
        self.before: list[str] = []
        self.sent: list[tuple[str, str | qfan.QfanError]] = []
        self.received: list[str] = []
        self.around: list[str] = []
        self.settled: list[tuple[str, Action]] = []

    def before_send(self, destination: str, attributes: dict[str, qfan.AttributeValue]) -> None:
        self.before.append(destination)
        attributes["trace"] = f"to-{destination}"

    def after_send(self, destination: str, result: str | qfan.QfanError) -> None:
        self.sent.append((destination, result))

    def after_receive(self, message: qfan.Message[Any]) -> None:
        self.received.append(message.message_id)

    async def around_handler(self, message: qfan.Message[Any], call_next: Any) -> Any:
        self.around.append(message.message_id)
        return await call_next()

    def after_settle(self, message: qfan.Message[Any], action: Action) -> None:
        self.settled.append((message.message_id, action))


async def test_hooks_see_sends_receives_handlers_and_settles(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    hooks = Recorder()
    app = make_app(hooks=[hooks])
    dead = app.queue(unique_name("dlq"), str)
    queue = app.queue(unique_name(), str, dead_letter=dead, max_receives=5)
    topic = app.topic(unique_name("t"), str)
    app.subscribe(topic, queue)
    traces: dict[str, str] = {}

    @app.worker(queue, name="hooked")
    async def handle(body: str, message: qfan.Message[str]) -> None:
        traces[body] = str(message.attributes["trace"])
        if body == "reject":
            raise qfan.Reject("no")

    async with app:
        ids = [await queue.send("one"), *await queue.send_many(["two", "reject"])]
        await topic.publish("three")
        await run_until(app, lambda: len(traces) == 4 and app.stats()["hooked"].dead_lettered == 1)
        [copy] = await dead.receive(wait=5)
    assert traces == {
        "one": f"to-{queue.name}",
        "two": f"to-{queue.name}",
        "reject": f"to-{queue.name}",
        "three": f"to-{topic.name}",
    }
    assert hooks.before.count(queue.name) == 3
    assert hooks.before.count(topic.name) == 1
    assert [result for name, result in hooks.sent if name == queue.name] == ids
    assert len([r for name, r in hooks.sent if name == topic.name]) == 1
    assert set(hooks.around) <= set(hooks.received)
    assert len(hooks.around) == 4
    actions = dict(hooks.settled)
    assert sum(isinstance(a, Delete) for a in actions.values()) == 3
    [rejected] = [a for a in actions.values() if isinstance(a, DeadLetter)]
    assert rejected.reason == "rejected: no"
    assert copy.message_id in hooks.received  # the dead-letter queue's receive went through the hooks too
    assert any(name == dead.name for name, _ in hooks.sent)  # and so did the forward that put it there


def test_hooks_must_subclass_pipeline_hooks() -> None:
    with pytest.raises(TypeError, match="PipelineHooks"):
        qfan.App("x", hooks=[object()])  # type: ignore[list-item]
