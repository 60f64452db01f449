"""Which held message runs next: handler slots shared by one or more priority levels.

A worker's handlers run under a :class:`Scheduler`. Every held message waits for a *turn* on its level; a
turn is one of ``concurrency`` handler slots. A plain queue is one level, and the scheduler is then a fair
capacity limiter. On a priority queue the levels compete:

- ``weighted``: when several levels have messages waiting, turns go to them in proportion to their weights
  (smooth weighted round-robin, interleaved: 8:3:1 never gives more than three highs in a row). A level
  without backlog gives its share to the others, so no slot stays idle while any level has work; every
  waiting level gets turns, so none starves. A level whose queue has backlog but whose next messages are
  still being received keeps earning credit (up to one round), so receive latency does not cost it its share.
- ``strict``: a level gets a turn only while every higher level is *empty*: nothing of it is held unstarted,
  and its last receive came back short (the queue had no more visible messages for it).

Reserved slots (``reserved={"high": 2}``) are held back for their level: other levels never use them, so
the level always has room to start at once; it uses the shared slots as well.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Protocol

import anyio

from .._exceptions import ConfigError
from .._pipeline._loop import asyncio_loop
from .._resources._levels import MODES, Mode

_SHARED = -1


class _Waiter(Protocol):
    """What an idle runner waits on: an asyncio future, or :class:`_EventWaiter` on other loops."""

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...

    def __await__(self) -> Generator[Any, Any, None]: ...


class _EventWaiter:
    """A waiter on an anyio Event, for event loops other than asyncio (trio)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    def cancelled(self) -> bool:
        return False

    def set_result(self, result: None, /) -> None:
        self._event.set()

    def __await__(self) -> Generator[Any, Any, None]:
        return self._event.wait().__await__()


def _new_waiter() -> _Waiter:
    """A bare future on asyncio: an idle runner waits once per message on a busy worker, and an anyio
    Event costs several times as much."""
    loop = asyncio_loop()
    return _EventWaiter() if loop is None else loop.create_future()


def check_reserved(concurrency: int, levels: int, reserved: Mapping[int, int]) -> int:
    """The shared slots left by ``reserved`` out of ``concurrency``; ``ConfigError`` if it starves a level."""
    kept = sum(n for n in reserved.values() if n)
    shared = concurrency - kept
    if shared < 0 or (shared == 0 and sum(1 for n in reserved.values() if n) < levels):
        raise ConfigError(
            f"reserved slots ({kept}) must leave shared slots out of concurrency {concurrency} "
            "for the levels without a reservation"
        )
    return shared


class Scheduler:
    """Hands out handler slots to levels; see the module docstring.

    Args:
        concurrency: handler slots in all.
        weights: one positive weight per level, highest priority first.
        mode: ``"weighted"`` or ``"strict"``.
        reserved: slots held back for a level (by index); their sum must leave at least one shared slot
            when there are levels without a reservation.
    """

    def __init__(
        self,
        concurrency: int,
        weights: Sequence[float] = (1.0,),
        mode: Mode = "weighted",
        reserved: Mapping[int, int] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"priority mode must be one of {MODES}, got {mode!r}")
        reserved = dict(reserved or {})
        shared = check_reserved(concurrency, len(weights), reserved)
        self.mode: Mode = mode
        self.weights = tuple(float(w) for w in weights)
        self._free_shared = shared
        self._free_reserved = [reserved.get(i, 0) for i in range(len(weights))]
        self._ready = [0] * len(weights)  # units ready to run, per level
        self._idle: deque[_Waiter] = deque()  # runners waiting for a turn
        self._credit = [0.0] * len(weights)
        self._owed = [0.0] * len(weights)
        # What strict mode knows of each level's queue: messages held but not started, last receive short.
        self._unstarted = [0] * len(weights)
        self._drained = [False] * len(weights)
        self._changed = anyio.Event()

    # -- turns ----------------------------------------------------------------------------------------

    def ready(self, level: int) -> None:
        """One more unit of work (a message, a group's next message, a batch) is ready on ``level``."""
        self._ready[level] += 1
        self._wake()

    async def take(self) -> tuple[int, int]:
        """Wait for the next turn: returns the level to run a unit of and the slot to give back to
        :meth:`done` afterwards. The worker's runners call this; each holds at most one turn."""
        while True:
            level = self._next_level()
            if level is not None:
                self._ready[level] -= 1
                return level, self._grant(level)
            idle = _new_waiter()
            self._idle.append(idle)
            try:
                await idle
            finally:
                if (not idle.done() or idle.cancelled()) and idle in self._idle:  # cancelled while waiting
                    self._idle.remove(idle)

    def done(self, slot: int) -> None:
        """A turn ended: its slot is free again. (No runner is woken: the runner that ends a turn asks
        for the next one itself, and any runner can run any level.)"""
        if slot == _SHARED:
            self._free_shared += 1
        else:
            self._free_reserved[slot] += 1

    def _wake(self) -> None:
        """Wake one idle runner if some level could start now (it re-checks, so a spare wake is harmless)."""
        if self._idle and self._startable_any():
            self._wake_one()

    def _wake_one(self) -> None:
        while self._idle:
            idle = self._idle.popleft()
            if not idle.done():  # a runner cancelled while it waited has nothing to wake: the next one
                idle.set_result(None)
                return

    def _startable_any(self) -> bool:
        return any(count and self._startable(i) for i, count in enumerate(self._ready))

    def _has_slot(self, level: int) -> bool:
        return self._free_shared > 0 or self._free_reserved[level] > 0

    def _startable(self, level: int) -> bool:
        if not self._has_slot(level):
            return False
        return self.mode == "weighted" or self._higher_empty(level)

    def _grant(self, level: int) -> int:
        if self._free_reserved[level] > 0:
            self._free_reserved[level] -= 1
            return level
        self._free_shared -= 1
        return _SHARED

    def _next_level(self) -> int | None:
        if len(self._ready) == 1:  # a plain queue: nothing to choose between
            return 0 if self._ready[0] and self._has_slot(0) else None
        if self.mode == "strict":
            for level, waiting in enumerate(self._ready):
                if waiting:
                    return level if self._startable(level) else None
            return None
        candidates = [i for i, waiting in enumerate(self._ready) if waiting and self._has_slot(i)]
        if not candidates:
            return None
        # A level with nothing waiting whose queue still has backlog (its last receive came back full: its
        # next messages are on the way) is owed the turns it would have had, up to one round (its weight),
        # and gets them first when its messages arrive: a receive's latency does not cost it its share.
        absent = [i for i, waiting in enumerate(self._ready) if not waiting and not self._drained[i]]
        if absent:
            sharing = sum(self.weights[i] for i in candidates) + sum(self.weights[i] for i in absent)
            for i in absent:
                self._owed[i] = min(self._owed[i] + self.weights[i] / sharing, self.weights[i])
        owing = [i for i in candidates if self._owed[i] >= 1]
        if owing:
            chosen = max(owing, key=self._owed.__getitem__)
            self._owed[chosen] -= 1
            return chosen
        if len(candidates) == 1:
            return candidates[0]
        # Smooth weighted round-robin among the levels that have messages waiting.
        total = 0.0
        for i in candidates:
            self._credit[i] += self.weights[i]
            total += self.weights[i]
        chosen = max(candidates, key=self._credit.__getitem__)
        self._credit[chosen] -= total
        return chosen

    # -- what strict mode knows of the queues ---------------------------------------------------------

    def held(self, level: int, count: int) -> None:
        """``count`` messages of ``level`` were received (positive) or started/given back (negative)."""
        self._unstarted[level] += count
        if self.mode == "strict" and self._unstarted[level] == 0:
            self._notify()

    def received(self, level: int, *, short: bool) -> None:
        """A receive on ``level`` came back; ``short``: with fewer messages than it asked for."""
        if self._drained[level] != short:
            self._drained[level] = short
            self._notify()

    def drained(self, level: int) -> bool:
        """Whether the last receive on ``level`` came back short."""
        return self._drained[level]

    def _higher_empty(self, level: int) -> bool:
        return all(self._drained[i] and not self._unstarted[i] for i in range(level))

    def may_receive(self, level: int) -> bool:
        """Strict mode receives a level only while every higher one is empty; weighted always may."""
        return self.mode == "weighted" or self._higher_empty(level)

    async def wait_changed(self) -> None:
        """Wait until a level's state changes (a receive came back different, held messages ran out)."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        while self._idle and self._startable_any():
            self._wake_one()
