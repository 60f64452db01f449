"""Idempotency records: who is handling a key (a lease), or what handling it returned (a result).

A record is ``in_progress`` (with ``lease_until``: whoever claimed it is handling the message) or
``completed`` (with the handler's encoded ``result``). Every record has ``expires_at`` (its time to live).
:meth:`IdempotencyStore.claim` takes a key for one run and is atomic: it succeeds only when there is no
record, the record expired, or its lease ran out (the claimant crashed). ``complete`` and ``release`` act
only for the run (``token``) that holds the claim, so a run that outlived its lease cannot overwrite the
run that took over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import anyio

from .._exceptions import QfanError
from .._pipeline._connection import Connection
from .._transport import ItemValue, RetryingKeyValueTable

State = Literal["in_progress", "completed"]


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """One key's record.

    Attributes:
        state: ``"in_progress"`` or ``"completed"``.
        token: the run that claimed it.
        lease_until: (in progress) when the claim runs out, epoch seconds.
        expires_at: when the record is forgotten, epoch seconds.
        result: (completed) the handler's result, encoded.
    """

    state: State
    token: str
    lease_until: float
    expires_at: float
    result: bytes = b""


class IdempotencyStore(Protocol):
    """Where idempotency records live: :class:`DynamoDBIdempotencyStore`, :class:`MemoryIdempotencyStore`,
    or your own (Redis, a SQL table) with these four methods."""

    async def open(self, connection: Connection) -> None:
        """Called once per worker before first use, with the app's connection (declare tables here)."""
        ...

    async def claim(self, key: str, token: str, lease: float, ttl: float) -> IdempotencyRecord | None:
        """Take ``key`` for run ``token`` (``None``), unless a live record is in the way (returned)."""
        ...

    async def complete(self, key: str, token: str, result: bytes, ttl: float) -> bool:
        """Record run ``token``'s result; False when the run no longer holds the claim."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Forget run ``token``'s claim (the handler failed: the message will be tried again)."""
        ...


class MemoryIdempotencyStore:
    """Records in this process's memory: for tests, and for a single process's duplicates.

    Args:
        clock: epoch seconds (tests may move time on).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.records: dict[str, IdempotencyRecord] = {}

    async def open(self, connection: Connection) -> None:
        return None

    async def claim(self, key: str, token: str, lease: float, ttl: float) -> IdempotencyRecord | None:
        now = self.clock()
        record = self.records.get(key)
        if record is not None and _live(record, now):
            return record
        self.records[key] = IdempotencyRecord("in_progress", token, now + lease, now + ttl)
        return None

    async def complete(self, key: str, token: str, result: bytes, ttl: float) -> bool:
        record = self.records.get(key)
        if record is None or record.token != token:
            return False
        now = self.clock()
        self.records[key] = IdempotencyRecord("completed", token, now, now + ttl, result)
        return True

    async def release(self, key: str, token: str) -> None:
        record = self.records.get(key)
        if record is not None and record.token == token and record.state == "in_progress":
            del self.records[key]


def _live(record: IdempotencyRecord, now: float) -> bool:
    """Whether a record still stands in a new run's way."""
    if record.expires_at <= now:
        return False
    return record.state == "completed" or record.lease_until > now


# DynamoDB attribute names (none of them DynamoDB reserved words, so no ExpressionAttributeNames).
_KEY, _STATE, _TOKEN, _LEASE, _EXPIRES, _RESULT = (
    "idempotency_key",
    "record_state",
    "run_token",
    "lease_until",
    "expires_at",
    "stored_result",
)
_CLAIMABLE = f"attribute_not_exists({_KEY}) OR {_EXPIRES} <= :now OR ({_STATE} = :busy AND {_LEASE} <= :now)"
_HELD = f"{_TOKEN} = :token"


class DynamoDBIdempotencyStore:
    """Records in a DynamoDB table, written with conditional writes; DynamoDB's TTL removes old ones.

    The table (string hash key ``idempotency_key``, on-demand capacity, TTL on ``expires_at``) is declared
    idempotently when a worker first uses the store: created when missing, used as it is when present.
    Expired records are also ignored by the conditions (DynamoDB deletes expired items only eventually).

    Args:
        table: the table's name.
        create: declare the table (``False``: it must exist).
        clock: epoch seconds.
    """

    def __init__(self, table: str, *, create: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.create = create
        self.clock = clock
        self._plane: RetryingKeyValueTable | None = None
        self._lock = anyio.Lock()

    async def open(self, connection: Connection) -> None:
        async with self._lock:
            if self._plane is None:
                plane = await connection.dynamodb()
                if self.create:
                    await plane.ensure_table(self.table, _KEY, _EXPIRES)
                self._plane = plane

    def _table(self) -> RetryingKeyValueTable:
        if self._plane is None:
            raise QfanError(f"idempotency table {self.table!r} is not open (a worker opens it)")
        return self._plane

    async def claim(self, key: str, token: str, lease: float, ttl: float) -> IdempotencyRecord | None:
        now = self.clock()
        item: dict[str, ItemValue] = {
            _KEY: key,
            _STATE: "in_progress",
            _TOKEN: token,
            _LEASE: round(now + lease, 3),
            _EXPIRES: int(now + ttl),
        }
        values: dict[str, ItemValue] = {":now": round(now, 3), ":busy": "in_progress"}
        if await self._table().put_item(self.table, item, condition=_CLAIMABLE, values=values):
            return None
        found = await self._table().get_item(self.table, {_KEY: key})
        if found is None:  # expired and deleted in between: try once more
            return await self.claim(key, token, lease, ttl)
        record = _record(found)
        # A retried put whose first answer was lost finds its own claim: it holds it.
        return None if record.token == token and record.state == "in_progress" else record

    async def complete(self, key: str, token: str, result: bytes, ttl: float) -> bool:
        now = self.clock()
        item: dict[str, ItemValue] = {
            _KEY: key,
            _STATE: "completed",
            _TOKEN: token,
            _LEASE: round(now, 3),
            _EXPIRES: int(now + ttl),
            _RESULT: result,
        }
        return await self._table().put_item(self.table, item, condition=_HELD, values={":token": token})

    async def release(self, key: str, token: str) -> None:
        await self._table().delete_item(
            self.table,
            {_KEY: key},
            condition=f"{_HELD} AND {_STATE} = :busy",
            values={":token": token, ":busy": "in_progress"},
        )


def _record(item: dict[str, ItemValue]) -> IdempotencyRecord:
    state = item.get(_STATE)
    result = item.get(_RESULT, b"")
    return IdempotencyRecord(
        "completed" if state == "completed" else "in_progress",
        str(item.get(_TOKEN, "")),
        float(item.get(_LEASE, 0)),
        float(item.get(_EXPIRES, 0)),
        result if isinstance(result, bytes) else b"",
    )
