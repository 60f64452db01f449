"""The App's Lambda side: handlers for SNS-triggered functions, and the ``handler(event, context)`` itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._exceptions import ConfigError
from .._pipeline._hooks import HookSet
from .._resources._queue import Queue
from .._resources._topic import Topic
from .._worker._handler import Handler
from .._worker._worker import Middleware, Worker
from ._handler import LambdaHandler
from ._sns import TopicHandler

F = TypeVar("F", bound=Callable[..., Any])


class LambdaRegistry:
    """What an App offers Lambda functions (mixed into :class:`qfan.App`)."""

    _workers: dict[str, Worker]
    _middleware: list[Middleware]
    _hooks: HookSet
    _topic_handlers: dict[str, TopicHandler]

    def topic_handler(
        self,
        topic: Topic[Any],
        *,
        name: str | None = None,
        dead_letter: Queue[Any] | None = None,
        concurrency: int = 10,
    ) -> Callable[[F], F]:
        """Register the decorated function for ``topic``'s notifications when SNS invokes a Lambda function
        (:meth:`lambda_handler`); the function is returned unchanged.

        The handler shapes are a worker's (``(body: T)``, ``(body: T, message)``, ``(message)``, sync or
        async). An exception fails the invocation (Lambda retries it); ``qfan.Reject`` and undecodable
        notifications are copied to ``dead_letter`` with the reason when given.
        """

        def register(function: F) -> F:
            handler = Handler.inspect(function, batch=False)
            key = name or handler.name
            if key in self._topic_handlers:
                raise ConfigError(f"a topic handler named {key!r} is already registered")
            if any(h.topic.name == topic.name for h in self._topic_handlers.values()):
                raise ConfigError(f"topic {topic.name!r} already has a handler")
            self._topic_handlers[key] = TopicHandler(key, topic, handler, dead_letter, concurrency)
            return function

        return register

    def lambda_handler(self, *, safety_margin: float = 1.0) -> LambdaHandler:
        """The synchronous ``handler(event, context)`` for AWS Lambda's Python runtime.

        Create it once, at module level (``handler = app.lambda_handler()``), after registering the
        workers: SQS records are routed by their queue to the worker registered for it and answered with
        a partial batch response; SNS records go to the :meth:`topic_handler` of their topic. The app is
        opened when something first needs AWS and stays open across warm invocations.

        Args:
            safety_margin: seconds before the invocation's deadline at which handlers still running are
                given up and their records reported.
        """
        return LambdaHandler(
            self,  # type: ignore[arg-type]  # the App this is mixed into is an async context manager
            self._workers,
            self._topic_handlers,
            self._hooks,
            self._middleware,
            safety_margin=safety_margin,
        )
