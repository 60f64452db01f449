"""Idempotent handling: a message whose key was handled already is acked without running the handler again.

Runs as a worker middleware around the handler (inside flow control, and inside a responder's answering,
so that a duplicate request gets the stored result as its reply, re-sent, not recomputed)::

    claim the key (lease) --taken--> run the handler --> store its result --> the message is deleted
           |                               '--raised--> forget the claim --> retried as usual
           |--completed record--> return the stored result (handler not run) --> deleted
           '--in progress elsewhere--> qfan.Retry(recheck_delay(...)) (a concurrent duplicate waits)

A claim whose holder crashed runs out with its lease, and the next delivery runs the handler.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec

from .._exceptions import Ack, ConfigError, Retry
from .._pipeline._connection import Connection
from .._pipeline._hooks import CallNext
from .._pipeline._message import Message
from .._resources._idempotency import IdempotencyStore

logger = logging.getLogger("qfan")

KeyFunction = Callable[[Any], str]


@dataclass
class IdempotencyStats:
    """Counters of one :class:`Idempotency` (across the workers sharing it).

    Attributes:
        ran: handler runs that claimed their key.
        duplicates: deliveries acked from a completed record, without running the handler.
        in_progress: deliveries put back because another run held the key.
        lost_claims: runs that finished after their lease had been taken over by another run.
    """

    ran: int = 0
    duplicates: int = 0
    in_progress: int = 0
    lost_claims: int = 0


@dataclass
class Idempotency:
    """``@app.worker(queue, idempotency=qfan.Idempotency(store, ...))``: handle each key once.

    Args:
        store: where records live (:class:`DynamoDBIdempotencyStore`, :class:`MemoryIdempotencyStore`, or
            any :class:`IdempotencyStore`).
        key: a function of the message's body giving its key; default: the FIFO deduplication id, else the
            SQS message id (which identifies deliveries of one sent message, not equal sends).
        ttl: seconds a completed record is kept (and duplicates recognised).
        lease: seconds a run holds its key; a concurrent duplicate waits at most that long (it looks again
            sooner first: :func:`recheck_delay`), and a crashed run's message runs again once it ran out.
            Keep it above the handler's longest run.
    """

    store: IdempotencyStore
    key: KeyFunction | None = None
    ttl: float = 86_400.0
    lease: float = 300.0
    stats: IdempotencyStats = field(default_factory=IdempotencyStats)

    def __post_init__(self) -> None:
        if not self.lease > 0 or not self.ttl >= self.lease:
            raise ConfigError(f"Idempotency: need 0 < lease <= ttl, got lease={self.lease} ttl={self.ttl}")

    def key_of(self, message: Message[Any]) -> str:
        """The message's idempotency key."""
        if self.key is not None:
            return str(self.key(message.body))
        return message.dedup_id or message.message_id

    def middleware(
        self, scope: str, connect: Callable[[], Connection], receive_limit: int | None = None
    ) -> IdempotentHandling:
        """The middleware for one worker (``scope``, its name, keeps workers' keys apart; ``receive_limit``,
        its attempt limit)."""
        return IdempotentHandling(self, scope, connect, receive_limit)


class IdempotentHandling:
    """One worker's idempotency middleware: ``await handling(message, call_next)``."""

    def __init__(
        self, config: Idempotency, scope: str, connect: Callable[[], Connection], receive_limit: int | None
    ) -> None:
        self.config = config
        self.scope = scope
        self.receive_limit = receive_limit
        self._connect = connect
        self._opened = False
        self._lock = anyio.Lock()

    async def _open(self) -> None:
        async with self._lock:
            if not self._opened:
                await self.config.store.open(self._connect())
                self._opened = True

    async def __call__(self, message: Message[Any], call_next: CallNext) -> Any:
        if not self._opened:
            await self._open()
        config, store, stats = self.config, self.config.store, self.config.stats
        key = f"{self.scope}#{config.key_of(message)}"
        token = uuid.uuid4().hex
        record = await store.claim(key, token, config.lease, config.ttl)
        if record is not None:
            if record.state == "completed":
                stats.duplicates += 1
                logger.info("idempotency: %s already handled (key %s): acked", message.message_id, key)
                return msgspec.json.decode(record.result) if record.result else None
            stats.in_progress += 1
            remaining = record.lease_until - store_clock(store)
            elapsed = config.lease - remaining
            raise Retry(delay=recheck_delay(remaining, elapsed, message.receive_count, self.receive_limit))
        stats.ran += 1
        try:
            result = await call_next()
        except Ack:  # done, from deep inside the handler: as good as returning
            await self._complete(message, key, token, None)
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await store.release(key, token)
            raise
        await self._complete(message, key, token, result)
        return result

    async def _complete(self, message: Message[Any], key: str, token: str, result: Any) -> None:
        if not await self.config.store.complete(key, token, _encode(result), self.config.ttl):
            self.config.stats.lost_claims += 1
            logger.warning("idempotency: %s ran after its lease on key %s ran out", message.message_id, key)


def recheck_delay(remaining: float, elapsed: float, receive_count: int, receive_limit: int | None) -> int:
    """Seconds until a delivery that found its key in progress elsewhere looks again.

    Most overlaps are two copies of one message handled at the same moment, and the other run ends soon.
    So the first deliveries look again after as long as that run has lasted so far (at least 1 s: the
    waits double with its age); later ones wait out the rest of the lease (a crashed run's key frees only
    then). Each look is a receive, so the quick looks are at most 3, and fewer under an attempt limit:
    ``(limit - 1) // 2``, which leaves receives for the run after the lease. Never past the lease (the key
    may be free then), never outside SQS's 1 s .. 12 h.

    Args:
        remaining: seconds left on the other run's lease.
        elapsed: seconds since that run claimed the key.
        receive_count: this delivery's receive count.
        receive_limit: the worker's attempt limit (receives before dead-lettering), if any.
    """
    quick = 3 if receive_limit is None else min(3, (receive_limit - 1) // 2)
    wait = min(remaining, max(1.0, elapsed)) if receive_count <= quick else remaining
    return max(1, min(43_200, math.ceil(wait)))


def store_clock(store: IdempotencyStore) -> float:
    """The store's clock when it has one (tests move it), else the wall clock."""
    clock = getattr(store, "clock", None)
    return float(clock()) if callable(clock) else time.time()


def _encode(result: Any) -> bytes:
    try:
        return msgspec.json.encode(result)
    except (TypeError, msgspec.EncodeError):
        logger.warning("idempotency: the handler's result (%s) is not JSON: stored as null", type(result))
        return b"null"
