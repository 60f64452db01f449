"""Coalescing of concurrent single-entry calls into SQS batch calls.

Each caller submits one entry and awaits its own outcome. The first caller of a batch leads it: it lingers
briefly so that concurrent callers can join, then flushes. A batch that fills up (10 entries, or the byte
limit) is flushed at once by the caller that filled it. Flushing is shielded from cancellation, so a leader
cancelled while lingering still sends everybody else's entries: no entry is ever left without an outcome.

A caller that must not wait (a worker freeing its slot once a delete is queued) submits with
:meth:`Coalescer.submit_soon` and a callback: the batch it opens is led by a task of its own, one per batch
rather than one per entry, and the callback gets the entry's outcome when the batch is flushed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

from .._exceptions import QfanError
from ._loop import spawn

logger = logging.getLogger("qfan")

In = TypeVar("In")
Out = TypeVar("Out")

MAX_BATCH_ENTRIES = 10

Flush = Callable[[Sequence[In]], Awaitable[Sequence[Out | QfanError]]]


Done = Callable[[Out | QfanError], None]
"""Called once with an entry's outcome (a result or a QfanError) when its batch is flushed."""

Finished = Callable[[QfanError | None], None]
"""Called once when work done without waiting for it is over: ``None``, or the error that undid it."""


class _Batch(Generic[In, Out]):
    __slots__ = ("callbacks", "done", "entries", "finished", "flushing", "results", "size")

    def __init__(self) -> None:
        self.entries: list[In] = []
        self.size = 0
        self.flushing = False
        self.finished = False
        self.done: anyio.Event | None = None  # made by the first caller that waits (queued ones do not)
        self.results: Sequence[Out | QfanError] = ()
        self.callbacks: list[tuple[int, Done[Out]]] = []


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
        batch, index, leader = self._add(entry)
        if len(batch.entries) >= self._max_entries:
            self._open = None
            await self._send(batch)
        elif leader:
            await self._lead(batch)
        if not batch.finished:
            if batch.done is None:
                batch.done = anyio.Event()
            await batch.done.wait()
        outcome = batch.results[index]
        if isinstance(outcome, QfanError):
            raise outcome
        return outcome

    def submit_soon(self, entry: In, done: Done[Out]) -> None:
        """Add ``entry`` to a batch without waiting for it: ``done`` gets its outcome once the batch is
        flushed (by a task of its own when this entry opens or fills the batch). ``done`` runs on the event
        loop and must not block; an exception it raises is logged."""
        batch, index, leader = self._add(entry)
        batch.callbacks.append((index, done))
        if len(batch.entries) >= self._max_entries:
            self._open = None
            spawn(self._send(batch))
        elif leader:
            spawn(self._lead(batch))

    def _add(self, entry: In) -> tuple[_Batch[In, Out], int, bool]:
        """Put ``entry`` in the open batch (opening one if there is none or it has no room): the batch,
        the entry's index in it, and whether this entry opened it (and so leads it)."""
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
        return batch, index, leader

    async def _lead(self, batch: _Batch[In, Out]) -> None:
        """Linger for company, then flush (at once if cancelled while lingering)."""
        try:
            await anyio.sleep(self._linger)
        finally:
            if self._open is batch:
                self._open = None
            await self._send(batch)

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
                batch.finished = True
                if batch.done is not None:
                    batch.done.set()
                for index, done in batch.callbacks:
                    try:
                        done(batch.results[index])
                    except Exception:  # one caller's callback must not keep the others from their outcome
                        logger.exception("qfan: a batch entry's completion callback failed")
