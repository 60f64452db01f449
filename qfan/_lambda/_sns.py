"""SNS events (``EventSource: aws:sns``): each notification routed by its topic to the handler registered
for that topic with :meth:`qfan.App.topic_handler`.

The notification goes through the inbound pipeline like an SNS envelope received from a queue, so the
handler gets the published body and attributes (and ``message.sns``). SNS invokes Lambda asynchronously:
an exception fails the invocation so that Lambda retries it (and finally hands it to the function's
on-failure destination); ``qfan.Reject`` and poison go to the handler's ``dead_letter`` queue with the
reason when it has one (else they fail the invocation too, so nothing is dropped silently).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from .._exceptions import ConfigError, MessageError
from .._pipeline._hooks import HookSet
from .._pipeline._inbound import arrive
from .._pipeline._message import AwaitedSettler, Message
from .._resources._queue import Queue
from .._resources._topic import Topic
from .._wire._codec import Decoder
from .._wire._pointer import PayloadLocation
from .._worker._backoff import Backoff
from .._worker._executor import reason_attributes
from .._worker._handler import Handler
from .._worker._runner import around, call_handler
from .._worker._settle import DeadLetter, Delete, Settled, SettlePolicy, decide
from .._worker._worker import Middleware
from ._records import from_sns_record
from ._sqs import Opener

logger = logging.getLogger("qfan")


@dataclass
class TopicHandler:
    """One ``@app.topic_handler`` registration.

    Attributes:
        name: unique within the app (default: the handler's qualified name).
        topic: the topic whose notifications it handles.
        handler: the user's function, introspected like a worker's.
        dead_letter: where rejected and poison notifications are copied, with the reason.
        concurrency: sync handlers' threads at once.
    """

    name: str
    topic: Topic[Any]
    handler: Handler
    dead_letter: Queue[Any] | None = None
    concurrency: int = 10
    decoder: Decoder[Any] = field(init=False)

    def __post_init__(self) -> None:
        if self.handler.batch:
            raise ConfigError(f"topic handler {self.name}: takes one message, not a list")
        if not 1 <= self.concurrency <= 10_000:
            raise ConfigError(f"topic handler {self.name}: concurrency must be 1..10000")
        self.decoder = Decoder(self.handler.body_type)


class _Notification(AwaitedSettler):
    """The settler of a notification: there is nothing to delete or to make visible again."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def delete_receipt(self, receipt_handle: str, *, payload: PayloadLocation | None = None) -> None:
        return None

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        return None


def topic_name_of(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sns":
        raise ConfigError(f"not an SNS topic ARN: {arn!r}")
    return parts[5]


async def handle_sns_event(
    records: Sequence[Mapping[str, Any]],
    handlers: Mapping[str, TopicHandler],
    hooks: HookSet,
    middleware: Sequence[Middleware],
    open_app: Opener,
) -> None:
    """Handle an SNS event's records (SNS sends one per invocation); raises what should fail it."""
    for record in records:
        topic_arn, raw = from_sns_record(record)
        handler = handlers.get(topic_name_of(topic_arn))
        if handler is None:
            known = ", ".join(sorted(handlers)) or "none"
            raise ConfigError(f"no topic handler is registered for {topic_arn!r} (topics: {known})")
        [message] = await arrive([raw], handler.decoder, _Notification(handler.topic.name), None, None, hooks)
        await _handle(message, handler, hooks, around(hooks, middleware), open_app)


async def _handle(
    message: Message[Any],
    handler: TopicHandler,
    hooks: HookSet,
    wrappers: Sequence[Middleware],
    open_app: Opener,
) -> None:
    outcome: BaseException | None = None
    poison = False
    try:
        _ = message.body
    except MessageError as exc:
        outcome, poison = exc, True
    else:
        try:
            await call_handler(handler.handler, message, anyio.CapacityLimiter(handler.concurrency), wrappers)
        except Exception as exc:
            outcome = exc
    policy = SettlePolicy(Backoff(), None, handler.dead_letter is not None)
    action = decide(outcome, 1, policy, poison=poison)
    if hooks:
        hooks.after_settle(message, action)
    if isinstance(action, Delete | Settled):
        return
    if isinstance(action, DeadLetter) and handler.dead_letter is not None:
        await open_app()
        attributes = reason_attributes(message, action.reason, action.error, handler.topic.name)
        await handler.dead_letter.forward(message, attributes=attributes)
        logger.warning(
            "topic handler %s: dead-lettered %s: %s", handler.name, message.message_id, action.reason
        )
        return
    assert outcome is not None, "only a failure is neither deleted nor dead-lettered"
    raise outcome
