"""A registered worker: which queue, which handler, how much concurrency, and what it has done so far."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ConfigError
from .._pipeline._connection import Connection
from .._pipeline._hooks import CallNext
from .._pipeline._message import Message
from .._resources._priority import PriorityQueue
from .._resources._queue import Queue
from .._wire._limits import MAX_VISIBILITY
from ._backoff import Backoff
from ._flow import CircuitBreaker, RateLimit
from ._handler import Handler
from ._idempotency import Idempotency
from ._scheduler import check_reserved

Middleware = Callable[[Message[Any], Callable[[], Awaitable[None]]], Awaitable[None]]
"""``async def middleware(message, call_next)``: runs around every single-message handler call."""

Wrapper = Callable[[Message[Any], CallNext], Awaitable[Any]]
"""A worker's own middleware (flow control, idempotency, a responder's answering); returns the result."""


@dataclass
class WorkerStats:
    """Counters of one worker since its app started running.

    Attributes:
        received: messages received.
        succeeded: messages handled and deleted.
        retried: failed attempts given back to the queue for a later try.
        dead_lettered: messages moved to the dead-letter queue (poison, rejected, out of attempts).
        released: messages given back unstarted (shutdown, or a FIFO group stopped by a failure).
        in_flight: messages held right now (waiting or running).
        started_by_level: on a priority queue, messages started per level.
        handler_seconds: total time spent in the handler.
        handler_calls: handler invocations.
        max_handler_seconds: the longest handler call.
    """

    received: int = 0
    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    released: int = 0
    in_flight: int = 0
    started_by_level: dict[str, int] = field(default_factory=dict)
    handler_seconds: float = 0.0
    handler_calls: int = 0
    max_handler_seconds: float = 0.0

    def timed(self, seconds: float) -> None:
        """Record one handler call's duration."""
        self.handler_calls += 1
        self.handler_seconds += seconds
        self.max_handler_seconds = max(self.max_handler_seconds, seconds)

    @property
    def mean_handler_seconds(self) -> float:
        """Average handler duration (0 before the first call)."""
        return self.handler_seconds / self.handler_calls if self.handler_calls else 0.0

    def summary(self) -> str:
        """One log line."""
        return (
            f"received={self.received} succeeded={self.succeeded} retried={self.retried} "
            f"dead_lettered={self.dead_lettered} released={self.released} in_flight={self.in_flight} "
            f"mean_handler={self.mean_handler_seconds * 1000:.1f}ms "
            f"max_handler={self.max_handler_seconds:.2f}s"
            + "".join(f" started[{level}]={n}" for level, n in self.started_by_level.items())
        )


@dataclass
class Worker:
    """One ``@app.worker`` registration.

    Attributes:
        name: unique within the app (default: the handler's qualified name).
        queue: where messages come from (a queue, or a priority queue's levels).
        handler: the user's function, introspected.
        concurrency: handlers running at once (for FIFO queues: message groups at once).
        prefetch: messages received ahead of free handlers (held invisible, heartbeat-extended).
        max_attempts: receives before a failing message is dead-lettered (default: the queue's
            ``max_receives`` when it has a dead-letter queue; unlimited without one).
        backoff: delays between attempts.
        visibility_timeout: the visibility each receive asks for (default: the queue's own).
        max_extension: how long the heartbeat may keep one message invisible (<= 12 h).
        batch_size: for batch handlers: messages per call (1-10).
        receive_wait: long-poll seconds per receive (default: the queue's receive wait, else 20).
        rate: paces handler starts (may be shared with other workers).
        breaker: stops the worker while its handlers keep failing (may be shared).
        idempotency: handles each message key once.
        around: middleware of the worker's own kind, outermost (a responder's answering).
        connect: the app's open connection (for idempotency stores).
        stats: counters.
    """

    name: str
    queue: Queue[Any] | PriorityQueue[Any]
    handler: Handler
    concurrency: int = 10
    prefetch: int = 10
    max_attempts: int | None = None
    backoff: Backoff = field(default_factory=Backoff)
    visibility_timeout: int | None = None
    max_extension: int = MAX_VISIBILITY
    batch_size: int | None = None
    receive_wait: int | None = None
    rate: RateLimit | None = None
    breaker: CircuitBreaker | None = None
    idempotency: Idempotency | None = None
    around: tuple[Wrapper, ...] = ()
    connect: Callable[[], Connection] | None = None
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 10_000:
            raise ConfigError(f"worker {self.name}: concurrency must be 1..10000, got {self.concurrency}")
        if not 0 <= self.prefetch <= 10_000:
            raise ConfigError(f"worker {self.name}: prefetch must be 0..10000, got {self.prefetch}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"worker {self.name}: max_attempts must be at least 1")
        if self.visibility_timeout is not None and not 1 <= self.visibility_timeout <= MAX_VISIBILITY:
            raise ConfigError(f"worker {self.name}: visibility_timeout must be 1..{MAX_VISIBILITY}")
        if not 1 <= self.max_extension <= MAX_VISIBILITY:
            raise ConfigError(f"worker {self.name}: max_extension must be 1..{MAX_VISIBILITY}")
        if self.receive_wait is not None and not 0 <= self.receive_wait <= 20:
            raise ConfigError(f"worker {self.name}: receive_wait must be 0..20 seconds")
        if self.batch_size is not None and not 1 <= self.batch_size <= 10:
            raise ConfigError(f"worker {self.name}: batch_size must be 1..10")
        levels = self.queue.consumed_levels()
        try:
            check_reserved(self.concurrency, len(levels.queues), dict(levels.reserved))
        except ConfigError as exc:
            raise ConfigError(f"worker {self.name}: {exc}") from None
        if self.batch_size is not None and (self.rate or self.breaker or self.idempotency):
            raise ConfigError(f"worker {self.name}: rate, breaker and idempotency need a one-message handler")
        if self.idempotency is not None and self.connect is None:
            raise ConfigError(f"worker {self.name}: idempotency needs the app's connection")
        if self.handler.batch != (self.batch_size is not None):
            raise ConfigError(
                f"worker {self.name}: a handler taking list[qfan.Message[T]] needs batch_size=, "
                "and batch_size= needs such a handler"
            )

    @property
    def attempts_limit(self) -> int | None:
        """The effective attempt limit (see ``max_attempts``)."""
        if self.max_attempts is not None:
            return self.max_attempts
        if self.queue.dead_letter is not None:
            return self.queue.options.max_receives
        return None

    @property
    def middleware(self) -> tuple[Wrapper, ...]:
        """The worker's own middleware, outermost first: ``around``, rate, breaker, idempotency."""
        chain = [*self.around, self.rate, self.breaker]
        if self.idempotency is not None and self.connect is not None:
            chain.append(self.idempotency.middleware(self.name, self.connect, self.attempts_limit))
        return tuple(wrapper for wrapper in chain if wrapper is not None)

    async def admit(self) -> None:
        """Return when the worker may receive: not while its circuit breaker is open."""
        if self.breaker is not None:
            await self.breaker.wait_closed()
