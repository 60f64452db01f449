"""The App's workers: registering handlers and responders, requests, hooks, and running them all."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeVar, cast

import anyio
import anyio.abc

from .._archive import Archiver, S3Archive
from .._exceptions import ConfigError, QfanError
from .._pipeline._connection import Connection
from .._pipeline._hooks import HookSet, PipelineHooks
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
from .._telemetry import Telemetry, metrics_installed, poll_backlog, tracing_installed
from .._wire._limits import MAX_VISIBILITY
from .._worker._backoff import Backoff
from .._worker._engine import WorkerEngine
from .._worker._flow import CircuitBreaker, RateLimit
from .._worker._handler import Handler
from .._worker._idempotency import Idempotency
from .._worker._intake import ReceiveCalls
from .._worker._worker import Middleware, Worker, WorkerStats

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[[], Awaitable[None]]

logger = logging.getLogger("qfan")


class WorkerRegistry:
    """What an App runs: workers and responders over its queues, and the requests it makes."""

    name: str
    _queues: dict[str, Queue[Any]]
    _priority_queues: dict[str, PriorityQueue[Any]]
    _workers: dict[str, Worker]
    _middleware: list[Middleware]
    _hooks: HookSet
    _startup: list[Hook]
    _shutdown: list[Hook]
    _stop: anyio.Event | None
    _engines: list[WorkerEngine]
    _replies: ReplyRouter
    _reply_sender: ReplySender
    _services: anyio.abc.TaskGroup | None
    _connection: Connection | None

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
            self._add_worker(
                name or handler.name,
                queue,
                handler,
                concurrency,
                prefetch,
                around=(responder.answer,),
                rate=rate,
                breaker=breaker,
                idempotency=idempotency,
            )
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
        self._middleware.append(function)
        return function

    def on_startup(self, function: Hook) -> Hook:
        """Register a coroutine function run by :meth:`run` before the workers start."""
        self._startup.append(function)
        return function

    def on_shutdown(self, function: Hook) -> Hook:
        """Register a coroutine function run by :meth:`run` after the workers stopped."""
        self._shutdown.append(function)
        return function

    @property
    def workers(self) -> Mapping[str, Worker]:
        """The registered workers, by name."""
        return dict(self._workers)

    def stats(self) -> dict[str, WorkerStats]:
        """Each worker's counters."""
        return {name: worker.stats for name, worker in self._workers.items()}

    async def run(
        self,
        *,
        workers: Iterable[str] | None = None,
        concurrency: int | None = None,
        drain_timeout: float = 30.0,
        stats_interval: float | None = 60.0,
        exit_when_idle: float | None = None,
    ) -> None:
        """Run the workers until :meth:`stop` (or cancellation); opens the app if it is not open.

        A receive still out when the workers stop is not cut off (the server would hand what arrives to
        nobody, hidden for the visibility timeout): it finishes in the app's background and gives back at
        once (visibility 0) what it brings, and ``run`` returns without waiting for it. When ``run`` opened
        the app itself, it waits for such receives (at most ``drain_timeout``) before closing the app.

        Args:
            workers: names of the workers to run (default: all).
            concurrency: override every selected worker's concurrency.
            drain_timeout: seconds running handlers get to finish after :meth:`stop`.
            stats_interval: seconds between log lines with each worker's counters (``None``: never).
            exit_when_idle: stop (gracefully, as :meth:`stop`) once every worker is :attr:`ready` and has
                held no message for this many seconds: drain a queue, then return. Long polls then last
                at most this long (rounded up), so ``run`` returns within about twice this.
        """
        chosen = list(self._workers) if workers is None else list(workers)
        unknown = [name for name in chosen if name not in self._workers]
        if unknown or not chosen:
            raise ConfigError(f"no such workers: {unknown}" if unknown else "the app has no workers to run")
        if exit_when_idle is not None and not exit_when_idle > 0:
            raise ConfigError(f"exit_when_idle must be a positive number of seconds, got {exit_when_idle!r}")
        selected = [self._workers[name] for name in chosen]
        if concurrency is not None:
            selected = [dataclasses.replace(w, concurrency=concurrency) for w in selected]
        # A stop() that came before run() got here (a signal during start-up) is honoured, not lost.
        stop = self._stop = self._stop or anyio.Event()
        async with AsyncExitStack() as stack:
            opened_here = self._connection is None
            if opened_here:  # run() opens the app itself when it is not open yet
                await stack.enter_async_context(cast("AbstractAsyncContextManager[Any]", self))
            for hook in self._startup:
                await hook()
            receives = ReceiveCalls(self._services)
            engines = [WorkerEngine(worker, self._middleware, self._hooks) for worker in selected]
            if exit_when_idle is not None:  # polls no longer than that: it returns in about twice that
                for engine in engines:
                    engine.longest_poll = max(1, min(20, math.ceil(exit_when_idle)))
            try:
                async with anyio.create_task_group() as tg:
                    self._engines = engines
                    if stats_interval:
                        tg.start_soon(self._log_stats, selected, stats_interval, stop)
                    if exit_when_idle is not None:
                        tg.start_soon(self._stop_when_idle, engines, exit_when_idle, stop)
                    for engine in engines:
                        tg.start_soon(engine.run, stop, drain_timeout, receives)
                    telemetry = next((h for h in self._hooks if isinstance(h, Telemetry)), None)
                    if telemetry is not None:
                        telemetry.watch(selected)
                        if telemetry.backlog_interval:
                            backlog = poll_backlog(
                                (q for w in selected for q in w.queue.consumed_levels().queues.values()),
                                telemetry.backlog_interval,
                                telemetry.instruments.backlog,
                            )
                            tg.start_soon(_until, stop, backlog)
            finally:
                self._engines = []
                self._stop = None  # the next run() starts afresh
                with anyio.CancelScope(shield=True):
                    for hook in self._shutdown:
                        await hook()
            if opened_here and receives.pending:  # closing would cut them off: let them finish first
                logger.info(
                    "waiting for %d receive(s) still out (at most %.0f s) before closing the app",
                    receives.pending,
                    drain_timeout,
                )
                with anyio.move_on_after(drain_timeout):
                    await receives.wait_settled()

    @property
    def ready(self) -> bool:
        """Whether :meth:`run` is running, not stopping, and every worker it runs is ready: its queues
        declared and the first receive from each of them came back (``qfan run --metrics-port``'s
        ``/readyz``, ``--ready-file``)."""
        engines = self._engines
        return bool(engines) and not self.stopping and all(engine.ready for engine in engines)

    async def _stop_when_idle(self, engines: list[WorkerEngine], seconds: float, stop: anyio.Event) -> None:
        check = min(1.0, seconds / 4)
        while not stop.is_set():
            with anyio.move_on_after(check):
                await stop.wait()
            idle = min(engine.activity.idle_for(engine.stats.in_flight) for engine in engines)
            if idle >= seconds and not stop.is_set():
                logger.info("every worker idle for %.1f s: stopping", idle)
                self.stop()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called on the current :meth:`run`."""
        return self._stop is not None and self._stop.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to stop gracefully (stop receiving, release unstarted, drain, return).

        Called before :meth:`run` has started (or while it starts), the coming run stops at once.
        """
        if self._stop is None:
            self._stop = anyio.Event()
        self._stop.set()

    @staticmethod
    async def _log_stats(workers: list[Worker], interval: float, stop: anyio.Event) -> None:
        while not stop.is_set():
            with anyio.move_on_after(interval):
                await stop.wait()
            for worker in workers:
                logger.info("worker %s: %s", worker.name, worker.stats.summary())


async def _until(stop: anyio.Event, work: Awaitable[None]) -> None:
    """Run ``work`` until ``stop`` is set."""
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await work
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        await stop.wait()
        tg.cancel_scope.cancel()
