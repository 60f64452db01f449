"""The App's workers: registering handlers and responders, requests, hooks, and running them all."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigError, QfanError
from .._pipeline._connection import Connection
from .._pipeline._hooks import PipelineHooks
from .._resources._priority import PriorityQueue
from .._resources._queue import Queue
from .._rpc import (
    ReplyAddresses,
    ReplyRouter,
    ReplySender,
    Responder,
    RpcStats,
    sweep_reply_queues,
)
from .._wire._limits import MAX_VISIBILITY
from .._worker._backoff import Backoff
from .._worker._flow import CircuitBreaker, RateLimit
from .._worker._handler import Handler
from .._worker._idempotency import Idempotency
from .._worker._worker import Middleware, Worker, WorkerStats
from ._running import Hook, WorkerRunner

if TYPE_CHECKING:
    from .._archive import Archiver, S3Archive

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("qfan")


class WorkerRegistry(WorkerRunner):
    """What an App runs: workers and responders over its queues, and the requests it makes."""

    name: str
    _queues: dict[str, Queue[Any]]
    _priority_queues: dict[str, PriorityQueue[Any]]
    _replies: ReplyRouter
    _reply_sender: ReplySender

    def _connect(self) -> Connection:
        raise NotImplementedError  # the App's

    # -- workers --------------------------------------------------------------------------------------

    def worker(
        self,
        queue: Queue[Any] | PriorityQueue[Any],
        *,
        name: str | None = None,
        concurrency: int = 10,
        prefetch: int | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
        visibility_timeout: int | None = None,
        max_extension: int = MAX_VISIBILITY,
        batch_size: int | None = None,
        receive_wait: int | None = None,
        rate: RateLimit | None = None,
        breaker: CircuitBreaker | None = None,
        idempotency: Idempotency | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function as the handler of ``queue``; the function is returned unchanged.

        Args:
            queue: a queue registered on this app, or a priority queue (the worker consumes all its levels,
                sharing its handlers between them as the priority queue's ``mode`` says; it holds up to
                ``concurrency + prefetch`` messages per level).
            name: the worker's name (default: the function's qualified name).
            concurrency: handlers running at once (FIFO queues: message groups at once).
            prefetch: messages received ahead of free handlers (default: ``min(concurrency, 10)``).
            max_attempts: receives before a failing message is dead-lettered (default: the queue's
                ``max_receives`` when it has a dead-letter queue, else unlimited).
            backoff: delays between attempts (default ``Backoff()``: 1 s doubling to 15 min, jittered).
            visibility_timeout: visibility asked for on receive (default: the queue's); the heartbeat
                keeps extending it while the message is held.
            max_extension: the longest the heartbeat keeps one message invisible (seconds, <= 12 h).
            batch_size: make this a batch handler taking ``list[qfan.Message[T]]`` (1-10 per call).
            receive_wait: long-poll seconds per receive (default: the queue's, else 20). moto's FIFO long
                polls do not notice groups that become free while they wait: use 1-2 s on moto.
            rate: pace handler starts (``qfan.RateLimit``; pass one to several workers to share it).
            breaker: stop receiving while handlers keep failing (``qfan.CircuitBreaker``; may be shared).
            idempotency: handle each message key once (``qfan.Idempotency``).
        """

        def register(function: F) -> F:
            handler = Handler.inspect(function, batch=batch_size is not None)
            self._add_worker(
                name or handler.name,
                queue,
                handler,
                concurrency,
                prefetch,
                max_attempts=max_attempts,
                backoff=backoff or Backoff(),
                visibility_timeout=visibility_timeout,
                max_extension=max_extension,
                batch_size=batch_size,
                receive_wait=receive_wait,
                rate=rate,
                breaker=breaker,
                idempotency=idempotency,
            )
            return function

        return register

    def archive(
        self,
        source: Queue[Any],
        *,
        sink: S3Archive,
        name: str | None = None,
        visibility_timeout: int | None = None,
        max_extension: int = MAX_VISIBILITY,
        receive_wait: int | None = None,
    ) -> Archiver:
        """Register a worker that archives ``source`` (a queue, or a queue subscribed to a topic) to S3.

        Messages are buffered as ``sink`` says and deleted only once the object holding them is written;
        records that cannot be decoded, serialised or partitioned go to the sink's error prefix, with their
        raw body and the reason (see :class:`S3Archive`). Returns the :class:`Archiver` (its ``stats``).

        Args:
            source: a queue registered on this app.
            sink: where and how to write.
            name: the worker's name (default: ``archive-<queue>``).
            visibility_timeout, max_extension, receive_wait: as for :meth:`worker`.
        """
        from .._archive import Archiver  # loaded when first used: not part of every app's import

        archiver = Archiver(
            source, sink, name or f"archive-{source.name}", self._connect, lambda: self.stopping
        )
        self._add_worker(
            archiver.name,
            source,
            archiver.handler,
            archiver.concurrency,
            archiver.prefetch,
            batch_size=10,
            visibility_timeout=visibility_timeout,
            max_extension=max_extension,
            receive_wait=receive_wait,
        )
        return archiver

    def _add_worker(
        self,
        name: str,
        queue: Queue[Any] | PriorityQueue[Any],
        handler: Handler,
        concurrency: int,
        prefetch: int | None,
        **options: Any,
    ) -> None:
        worker = Worker(
            name=name,
            queue=queue,
            handler=handler,
            concurrency=concurrency,
            prefetch=min(concurrency, 10) if prefetch is None else prefetch,
            connect=self._connect,
            **options,
        )
        if self._queues.get(queue.name) is not queue and self._priority_queues.get(queue.name) is not queue:
            raise ConfigError(f"worker {worker.name}: queue {queue.name!r} is not registered on this app")
        if worker.name in self._workers:
            raise ConfigError(f"a worker named {worker.name!r} is already registered")
        self._workers[worker.name] = worker

    def responder(
        self,
        queue: Queue[Any],
        *,
        name: str | None = None,
        concurrency: int = 10,
        prefetch: int | None = None,
        reply_to: Iterable[str] = (),
        expose_errors: bool = False,
        rate: RateLimit | None = None,
        breaker: CircuitBreaker | None = None,
        idempotency: Idempotency | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function as a responder: its return value answers each request.

        Requests come from :meth:`request` (or any client that sets the ``ResponseQueueUrl`` and
        ``qfan-correlation-id`` attributes). The reply address is checked before the handler runs: a
        request naming a queue outside the allowed reply queues (see :class:`ReplyAddresses`) is
        dead-lettered with the reason, unhandled, and nothing is sent there. When the handler raises, the
        requester gets a ``qfan.RemoteError`` with the exception's type (and its message only with
        ``expose_errors=True``), the responder logs the exception with the correlation id, and the request
        is deleted; ``qfan.Retry``/``qfan.Reject`` keep their worker meaning. A message without a reply
        address is handled and deleted like any worker's. The function is returned unchanged.

        Args:
            queue: the request queue.
            name: the worker's name (default: the function's).
            concurrency: requests handled at once.
            prefetch: requests held received but not started.
            reply_to: reply queues allowed besides those qfan requesters create (``qfan-reply-*`` on the
                request queue's endpoint and account): name patterns, or full queue URL patterns.
            expose_errors: send the text of a handler's exception to the requester.
            rate, breaker: flow control, as for :meth:`worker`.
            idempotency: as for :meth:`worker`; a duplicate request is answered with the stored result
                (the reply is sent again, the handler does not run again).
        """
        ReplyAddresses(reply_to)  # a bad pattern is a ConfigError here, not when the first request comes

        def register(function: F) -> F:
            responder = Responder(
                queue, self._connect, self._reply_sender, reply_to=reply_to, expose_errors=expose_errors
            )
            handler = Handler.inspect(function, batch=False)
            flow = {"rate": rate, "breaker": breaker, "idempotency": idempotency}
            options: dict[str, Any] = {"around": (responder.answer,), **flow}
            self._add_worker(name or handler.name, queue, handler, concurrency, prefetch, **options)
            return function

        return register

    async def request(
        self,
        queue: Queue[Any],
        value: Any,
        *,
        response_type: type[T] | Any = Any,
        timeout: float = 30.0,  # noqa: ASYNC109 - the request's own deadline, part of the public API
        attributes: Mapping[str, Any] | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> Any:
        """Send ``value`` to a responder's queue and wait for its answer, decoded as ``response_type``.

        Raises ``qfan.RequestTimeout`` when no answer comes within ``timeout`` seconds (a late answer is
        dropped and counted) and ``qfan.RemoteError`` when the responder raised. The reply queue is created
        on the first request and deleted when the app closes.
        """
        if self._services is None:
            raise QfanError(f"app {self.name!r} is not open: use 'async with app:'")
        return await self._replies.request(
            self._connect(),
            self._services,
            queue,
            value,
            response_type=response_type,
            timeout=timeout,
            attributes=attributes,
            group_id=group_id,
            dedup_id=dedup_id,
        )

    @property
    def rpc_stats(self) -> RpcStats:
        """Counters of this app's requests (sent, replied, timed out, remote errors, dropped replies)."""
        return self._replies.stats

    @property
    def reply_queue_url(self) -> str | None:
        """This process's reply queue, once the first request created it."""
        return self._replies.url

    async def sweep_reply_queues(self, idle_seconds: float = 600.0) -> list[str]:
        """Delete reply queues idle for ``idle_seconds`` (left by crashed processes); returns their URLs."""
        return await sweep_reply_queues(self._connect(), idle_seconds, keep=self._replies.url)

    def _add_telemetry(self) -> None:
        """Register :class:`~qfan.Telemetry` when an OpenTelemetry SDK is installed and none is registered
        (checked when the app opens; without an SDK no hook is added, so the pipelines skip them)."""
        from .._telemetry import Telemetry, metrics_installed, tracing_installed  # loaded when an app opens

        if any(isinstance(h, Telemetry) for h in self._hooks):
            return
        if tracing_installed() or metrics_installed():
            self._hooks.add(Telemetry())

    def add_hooks(self, hooks: PipelineHooks) -> PipelineHooks:
        """Register pipeline hooks (see :class:`PipelineHooks`); returns them."""
        self._hooks.add(hooks)
        return hooks

    def middleware(self, function: Middleware) -> Middleware:
        """Register ``async def middleware(message, call_next)`` around every single-message handler."""
        return _appended(self._middleware, function)

    def on_startup(self, function: Hook) -> Hook:
        """Register a coroutine function run by :meth:`run` before the workers start."""
        return _appended(self._startup, function)

    def on_shutdown(self, function: Hook) -> Hook:
        """Register a coroutine function run by :meth:`run` after the workers stopped."""
        return _appended(self._shutdown, function)

    @property
    def workers(self) -> Mapping[str, Worker]:
        """The registered workers, by name."""
        return dict(self._workers)

    def stats(self) -> dict[str, WorkerStats]:
        """Each worker's counters."""
        return {name: worker.stats for name, worker in self._workers.items()}


def _appended(registered: list[F], function: F) -> F:
    """Register ``function`` (decorator style: it is returned unchanged)."""
    registered.append(function)
    return function
