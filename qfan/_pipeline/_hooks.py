"""Hooks on the two pipelines: where instrumentation (tracing, metrics) and policies plug in, once.

- ``before_send(destination, attributes)``: for every message a queue or topic sends, before it
  is encoded and measured; may add or change attributes in place (trace context), or raise to refuse it.
- ``after_send(destination, result)``: for every entry a batch call answered: its message id or its error.
- ``after_receive(message)``: for every message that arrived, whoever received it (a queue, a worker, the
  reply router); its ``body`` may raise, as always for a bad message.
- ``after_receive_batch(queue, messages)``: once per receive call, after ``after_receive`` for each of its
  messages (a batch-level span links them); ``messages`` is empty for an empty receive.
- ``around_handler(message, call_next)``: around every single-message handler a worker runs.
- ``around_batch(messages, call_next)``: around every batch handler call (``batch_size=`` workers).
- ``after_payload(call)``: after each S3 call that stores or fetches an offloaded body (a
  :class:`PayloadCall`: operation, location, size, timing, error, and the message's attributes).
- ``after_settle(message, action)``: after a worker decided what becomes of a message (a
  :mod:`~qfan._settle` action), before carrying it out.

``before_send`` and ``after_send`` get the destination's name; hooks that need to know more (a queue or
an SNS topic, FIFO) override ``before_send_to`` / ``after_send_to`` instead, which get the
:class:`~qfan._pipeline._outgoing.Destination` (by default they call the name-only ones).

With no hooks registered the pipelines skip all of this (one truth test per batch or message).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._exceptions import QfanError
from .._transport import WireAttributes
from .._wire._attributes import AttributeValue
from .._wire._pointer import PayloadLocation

if TYPE_CHECKING:
    from .._worker._settle import Action
    from ._message import Message
    from ._outgoing import Destination

CallNext = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class PayloadCall:
    """One S3 call for an offloaded body, as ``after_payload`` sees it.

    Attributes:
        operation: ``PutObject`` (sending) or ``GetObject`` (receiving).
        destination: the queue or topic the message goes to or came from.
        location: the object.
        size: bytes stored or read (``None`` when the call failed).
        attributes: the message's attributes as they travel (its trace context among them).
        started: when the call started (``time.time_ns()``).
        ended: when it ended.
        error: what it failed with, if it did.
    """

    operation: str
    destination: str
    location: PayloadLocation
    size: int | None
    attributes: WireAttributes
    started: int
    ended: int
    error: QfanError | None = None


class PipelineHooks:
    """Subclass and override the hooks you need; register with ``App(hooks=[...])`` or :meth:`App.add_hooks`.

    Hooks run inline on qfan's hot paths: keep them quick, and let them raise only on purpose (an exception
    from ``before_send`` fails that send; from ``after_*`` hooks it is logged and ignored).
    """

    def before_send(self, destination: str, attributes: dict[str, AttributeValue]) -> None:
        """A message is about to be encoded for ``destination``; ``attributes`` may be changed in place."""

    def after_send(self, destination: str, result: str | QfanError) -> None:
        """A batch call answered for one message: its message id, or the error it ended with."""

    def before_send_to(self, destination: Destination, attributes: dict[str, AttributeValue]) -> None:
        """:meth:`before_send` with the whole destination (``system`` says ``aws_sqs`` or ``aws_sns``)."""
        self.before_send(destination.name, attributes)

    def after_send_to(self, destination: Destination, result: str | QfanError) -> None:
        """:meth:`after_send` with the whole destination."""
        self.after_send(destination.name, result)

    def after_receive(self, message: Message[Any]) -> None:
        """A message arrived (decoding its body is left to whoever asks for it)."""

    def after_receive_batch(self, queue: str, messages: Sequence[Message[Any]]) -> None:
        """A receive from ``queue`` brought ``messages`` (maybe none), after their ``after_receive``."""

    def after_payload(self, call: PayloadCall) -> None:
        """An S3 call stored or fetched an offloaded body (or failed to)."""

    async def around_handler(self, message: Message[Any], call_next: CallNext) -> Any:
        """Runs the handler (``await call_next()``); override to wrap it."""
        return await call_next()

    async def around_batch(self, messages: list[Message[Any]], call_next: CallNext) -> Any:
        """Runs a batch handler (``await call_next()`` returns what it returned); override to wrap it."""
        return await call_next()

    def after_settle(self, message: Message[Any], action: Action) -> None:
        """A worker decided ``action`` for ``message`` (before carrying it out)."""


class HookSet:
    """The hooks registered on one app, called in registration order; falsy when there are none."""

    def __init__(self, hooks: Iterable[PipelineHooks] = ()) -> None:
        self._hooks: list[PipelineHooks] = []
        self._around: list[PipelineHooks] = []
        self._around_batch: list[PipelineHooks] = []
        for hook in hooks:
            self.add(hook)

    def add(self, hook: PipelineHooks) -> None:
        """Register ``hook`` (it takes effect for messages sent and received from now on)."""
        if not isinstance(hook, PipelineHooks):
            raise TypeError(f"hooks must subclass qfan.PipelineHooks, got {type(hook).__name__}")
        self._hooks.append(hook)
        if type(hook).around_handler is not PipelineHooks.around_handler:
            self._around.append(hook)
        if type(hook).around_batch is not PipelineHooks.around_batch:
            self._around_batch.append(hook)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def __iter__(self) -> Iterator[PipelineHooks]:
        return iter(list(self._hooks))

    def before_send(
        self, destination: Destination, attributes: dict[str, AttributeValue]
    ) -> dict[str, AttributeValue]:
        for hook in self._hooks:
            hook.before_send_to(destination, attributes)
        return attributes

    def after_send(self, destination: Destination, result: str | QfanError) -> None:
        for hook in self._hooks:
            _observe(hook.after_send_to, destination, result)

    def after_receive(self, queue: str, messages: Sequence[Message[Any]]) -> None:
        """``after_receive`` for each message, then ``after_receive_batch``."""
        for hook in self._hooks:
            for message in messages:
                _observe(hook.after_receive, message)
            _observe(hook.after_receive_batch, queue, messages)

    def after_payload(self, call: PayloadCall) -> None:
        for hook in self._hooks:
            _observe(hook.after_payload, call)

    def after_settle(self, message: Message[Any], action: Action) -> None:
        for hook in self._hooks:
            _observe(hook.after_settle, message, action)

    @property
    def around(self) -> list[Callable[[Message[Any], CallNext], Awaitable[Any]]]:
        """The ``around_handler`` hooks that do something (outermost first)."""
        return [hook.around_handler for hook in self._around]

    @property
    def around_batch(self) -> list[Callable[[list[Message[Any]], CallNext], Awaitable[Any]]]:
        """The ``around_batch`` hooks that do something (outermost first)."""
        return [hook.around_batch for hook in self._around_batch]


def _observe(hook: Callable[..., None], *args: Any) -> None:
    try:
        hook(*args)
    except Exception:  # an observer's failure must not fail the message
        logging.getLogger("qfan").exception("pipeline hook %r failed", hook)
