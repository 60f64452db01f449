"""Running an App's workers: ``run`` until ``stop``, readiness, idle exit, periodic stats."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc

from .._exceptions import ConfigError
from .._pipeline._connection import Connection
from .._pipeline._hooks import HookSet
from .._worker._engine import WorkerEngine
from .._worker._intake import ReceiveCalls
from .._worker._worker import Middleware, Worker

if TYPE_CHECKING:
    from .._telemetry import Telemetry

Hook = Callable[[], Awaitable[None]]

logger = logging.getLogger("qfan")


class WorkerRunner:
    """The App's run loop over its registered workers (a part of :class:`WorkerRegistry`)."""

    _workers: dict[str, Worker]
    _middleware: list[Middleware]
    _hooks: HookSet
    _startup: list[Hook]
    _shutdown: list[Hook]
    _stop: anyio.Event | None
    _engines: list[WorkerEngine]
    _services: anyio.abc.TaskGroup | None
    _connection: Connection | None

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
                    telemetry = _telemetry(self._hooks)
                    if telemetry is not None:
                        telemetry.watch(selected)
                        if telemetry.backlog_interval:
                            from .._telemetry import poll_backlog

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


def _telemetry(hooks: HookSet) -> Telemetry | None:
    """The app's :class:`~qfan.Telemetry` hooks, if registered (the module is loaded only then)."""
    from .._telemetry import Telemetry

    return next((hook for hook in hooks if isinstance(hook, Telemetry)), None)
