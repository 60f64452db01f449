"""Coalescing of concurrent single-entry calls into SQS batch calls.

Each caller submits one entry and awaits its own outcome. The first caller of a batch leads it: it lingers
briefly so that concurrent callers can join, then flushes. A batch that fills up (10 entries, or the byte
limit) is flushed at once by the caller that filled it. Flushing is shielded from cancellation, so a leader
cancelled while lingering still sends everybody else's entries: no entry is ever left without an outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

from .._exceptions import QfanError

In = TypeVar("In")
Out = TypeVar("Out")

MAX_BATCH_ENTRIES = 10

Flush = Callable[[Sequence[In]], Awaitable[Sequence[Out | QfanError]]]


class _Batch(Generic[In, Out]):
    __slots__ = ("done", "entries", "flushing", "results", "size")

    def __init__(self) -> None:
        self.entries: list[In] = []
        self.size = 0
        self.flushing = False
        self.done = anyio.Event()
        self.results: Sequence[Out | QfanError] = ()


class Coalescer(Generic[In, Out]):
    """Gathers concurrent submissions into batches of at most ``max_entries`` and ``max_bytes``.

    Args:
        flush: sends one batch and returns one outcome per entry, in order (a result or a QfanError).
        linger: seconds the first entry of a batch waits for company.
        max_bytes: the batch's total size limit (``None``: no limit); ``size_of`` measures an entry.
        serial: flush one batch at a time, so batches reach SQS in submission order (FIFO queues).
    """

    def __init__(
        self,
        flush: Flush[In, Out],
        *,
        linger: float,
        max_entries: int = MAX_BATCH_ENTRIES,
        max_bytes: int | None = None,
        size_of: Callable[[In], int] | None = None,
        serial: bool = False,
    ) -> None:
        self._flush, self._linger = flush, linger
        self._max_entries, self._max_bytes, self._size_of = max_entries, max_bytes, size_of
        self._open: _Batch[In, Out] | None = None
        self._serial = anyio.Lock() if serial else None

    async def submit(self, entry: In) -> Out:
        """Add ``entry`` to a batch and return its outcome; raises the entry's own error."""
        size = self._size_of(entry) if self._size_of is not None else 0
        batch = self._open
        if batch is not None and not self._fits(batch, size):
            self._open = batch = None  # sealed: its leader flushes it when its linger ends
        leader = batch is None
        if batch is None:
            batch = self._open = _Batch()
        index = len(batch.entries)
        batch.entries.append(entry)
        batch.size += size
        if len(batch.entries) >= self._max_entries:
            self._open = None
            await self._send(batch)
        elif leader:
            try:
                await anyio.sleep(self._linger)
            finally:
                if self._open is batch:
                    self._open = None
                await self._send(batch)
        await batch.done.wait()
        outcome = batch.results[index]
        if isinstance(outcome, QfanError):
            raise outcome
        return outcome

    def _fits(self, batch: _Batch[In, Out], size: int) -> bool:
        return self._max_bytes is None or batch.size + size <= self._max_bytes

    async def _send(self, batch: _Batch[In, Out]) -> None:
        if batch.flushing:
            return
        batch.flushing = True
        with anyio.CancelScope(shield=True):
            try:
                if self._serial is not None:
                    async with self._serial:
                        batch.results = await self._flush(batch.entries)
                else:
                    batch.results = await self._flush(batch.entries)
            except QfanError as exc:
                batch.results = [exc] * len(batch.entries)
            except Exception as exc:
                error = QfanError(f"batch flush failed unexpectedly: {exc!r}")
                error.__cause__ = exc
                batch.results = [error] * len(batch.entries)
            finally:
                if len(batch.results) != len(batch.entries):
                    lost = QfanError("batch flush returned no outcome for this entry")
                    batch.results = [*batch.results, *[lost] * len(batch.entries)][: len(batch.entries)]
                batch.done.set()
