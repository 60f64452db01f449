"""What a worker's handler wants: the body type from its annotations, a message parameter, sync or async."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, get_args, get_origin, get_type_hints

import anyio.to_thread
import msgspec

from .._exceptions import ConfigError
from .._pipeline._message import Message

HandlerFunction = Callable[..., Any]


def _message_type(annotation: Any) -> Any | None:
    """``T`` for an annotation ``Message[T]`` (``Any`` for a bare ``Message``), else ``None``."""
    if annotation is Message:
        return Any
    if get_origin(annotation) is Message:
        return get_args(annotation)[0]
    return None


_FRAMES_UP = 8  # how far up the stack a handler's decorator may be applied from (app.worker, register, ...)


def _type_hints(function: HandlerFunction, name: str) -> dict[str, Any]:
    """The handler's annotations, resolved.

    With ``from __future__ import annotations`` they are strings, resolved in the function's module; a type
    defined inside the function that registers the handler (a test, a factory) is only in that function's
    local names, so those of the frames the decorator is applied from are tried too.
    """
    try:
        return get_type_hints(function)
    except NameError as first:
        frame = inspect.currentframe()
        try:
            for _ in range(_FRAMES_UP):
                frame = frame.f_back if frame is not None else None
                if frame is None:
                    break
                try:
                    return get_type_hints(function, localns=dict(frame.f_locals))
                except NameError:
                    continue
        finally:
            del frame  # frames hold their locals: do not keep them alive
        raise ConfigError(f"handler {name}: cannot resolve its type annotations: {first}") from first
    except Exception as exc:  # a forward reference that does not resolve
        raise ConfigError(f"handler {name}: cannot resolve its type annotations: {exc}") from exc


def _check_decodable(name: str, body_type: Any) -> None:
    try:
        msgspec.json.Decoder(body_type)
    except TypeError as exc:
        raise ConfigError(f"handler {name}: msgspec cannot decode into {body_type!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Handler:
    """A user's handler function and how to call it.

    Shapes accepted (``T`` is any type msgspec can decode; missing annotations mean ``Any``):

    - ``(body: T)`` and ``(body: T, message: qfan.Message[T])``;
    - ``(message: qfan.Message[T])``;
    - batch handlers: ``(messages: list[qfan.Message[T]])``, returning the messages that failed (or
      ``None`` when all succeeded).

    Plain ``def`` functions run in a worker thread, bounded by the worker's concurrency.

    ``takes_poison``: a batch handler that is also given the messages whose body cannot be had
    (``message.body`` raises) and settles them itself, instead of the engine dead-lettering them (the
    archive sink writes them to its error prefix).
    """

    function: HandlerFunction
    name: str
    body_type: Any
    takes_body: bool
    takes_message: bool
    batch: bool
    is_async: bool
    takes_poison: bool = False

    @classmethod
    def inspect(cls, function: HandlerFunction, *, batch: bool) -> Handler:
        """Read a handler's signature; raises ``ConfigError`` for shapes qfan cannot call."""
        name = getattr(function, "__qualname__", repr(function))
        hints = _type_hints(function, name)
        params = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not 1 <= len(params) <= (1 if batch else 2):
            shape = "(messages: list[qfan.Message[T]])" if batch else "(body: T[, message: qfan.Message[T]])"
            raise ConfigError(f"handler {name} must take {shape}")
        first = hints.get(params[0].name, Any)
        is_async = inspect.iscoroutinefunction(function)
        if batch:
            args = get_args(first)
            inner = _message_type(args[0]) if args else Any
            if not (get_origin(first) in (list, Sequence, Iterable) or first is Any) or inner is None:
                raise ConfigError(f"batch handler {name} must take (messages: list[qfan.Message[T]])")
            return cls(function, name, inner, False, True, True, is_async)
        args = get_args(first)
        if get_origin(first) in (list, Sequence, Iterable) and args and _message_type(args[0]) is not None:
            raise ConfigError(f"handler {name} takes a list of messages: register it with batch_size=")
        as_message = _message_type(first)
        if as_message is not None:
            if len(params) == 2:
                raise ConfigError(f"handler {name}: a handler taking the message takes nothing else")
            return cls(function, name, as_message, False, True, False, is_async)
        _check_decodable(name, first)
        return cls(function, name, first, True, len(params) == 2, False, is_async)

    async def __call__(
        self,
        subject: Message[Any] | list[Message[Any]],
        limiter: anyio.CapacityLimiter,
        *,
        abandon_on_cancel: bool = False,
    ) -> Any:
        """Call the handler with what it asked for; sync handlers run in a thread under ``limiter``.

        A thread cannot be stopped: cancelled, the call waits for it, unless ``abandon_on_cancel`` (then the
        call returns at once and the thread finishes on its own).
        """
        if isinstance(subject, list):
            args: tuple[Any, ...] = (subject,)
        elif self.takes_body:
            args = (subject.body, subject) if self.takes_message else (subject.body,)
        else:
            args = (subject,)
        if self.is_async:
            result: Awaitable[Any] = self.function(*args)
            return await result
        return await anyio.to_thread.run_sync(
            partial(self.function, *args), limiter=limiter, abandon_on_cancel=abandon_on_cancel
        )
