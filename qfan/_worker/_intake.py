"""A worker's receives: long polls that outlive a stop, gathering slots, and when a worker is ready or idle.

A long poll the client cuts short is not cut short on the server: SQS (and the emulators) go on waiting,
and hand the messages that arrive meanwhile to nobody — hidden for the visibility timeout. So a worker's
receives run as tasks of the app's lifetime (:class:`ReceiveCalls`), not of the worker's: when the worker
stops it stops *waiting* for a receive, and the receive, when it completes, gives back at once (visibility
0) whatever it brought. Closing the app cancels receives still out; ``App.run`` waits for them (at most
its drain timeout) before it closes an app it opened itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from .._exceptions import QfanError
from .._pipeline._message import Message
from .._resources._queue import Queue

logger = logging.getLogger("qfan")

Fetch = Callable[[], Awaitable[list[Message[Any]]]]
GiveBack = Callable[[list[Message[Any]]], Awaitable[None]]


@dataclass(eq=False)
class Level:
    """One queue the worker receives from: a priority level, or the worker's only queue."""

    index: int
    name: str
    queue: Queue[Any]
    slots: anyio.Semaphore
    gathering: anyio.Lock = field(default_factory=anyio.Lock)


class _Call:
    __slots__ = ("abandoned", "done", "error", "messages")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.messages: list[Message[Any]] = []
        self.error: BaseException | None = None
        self.abandoned = False


class ReceiveCalls:
    """Runs receives in a long-lived task group, so that a worker's stop never cuts one off.

    Args:
        group: the task group the receives run in (the app's services); ``None``: in the caller's task
            (a stop then cuts the receive off).
    """

    def __init__(self, group: anyio.abc.TaskGroup | None) -> None:
        self._group = group
        self._pending = 0
        self._settled: anyio.Event | None = None  # made by wait_settled while receives are out

    @property
    def pending(self) -> int:
        """Receives still out."""
        return self._pending

    async def call(self, fetch: Fetch, give_back: GiveBack) -> list[Message[Any]]:
        """``await fetch()``; when the caller is cancelled first, the receive goes on in the group and
        ``give_back`` gets whatever it brings."""
        if self._group is None:
            return await fetch()
        call = _Call()
        self._pending += 1
        self._group.start_soon(self._run, fetch, give_back, call)
        try:
            await call.done.wait()
        except BaseException:  # the worker stopped waiting: the receive finishes alone
            if not call.done.is_set():
                call.abandoned = True
            elif call.messages:  # it came back just as the wait was cancelled: give back here
                with anyio.CancelScope(shield=True):
                    await give_back(call.messages)
            raise
        if call.error is not None:
            raise call.error
        return call.messages

    async def _run(self, fetch: Fetch, give_back: GiveBack, call: _Call) -> None:
        try:
            try:
                call.messages = await fetch()
            except Exception as exc:  # the waiting worker raises it
                call.error = exc
            call.done.set()
            if call.abandoned and call.messages:
                logger.info(
                    "a receive that completed after its worker stopped brought %d message(s): released",
                    len(call.messages),
                )
                try:
                    await give_back(call.messages)
                except Exception:  # never into the app's task group: they come back after their timeout
                    logger.exception("giving back %d message(s) failed", len(call.messages))
        finally:
            if not call.done.is_set():  # cancelled: the app is closing
                call.error = QfanError("the receive was cancelled: the app is closing")
                call.done.set()
            self._pending -= 1
            if not self._pending and self._settled is not None:
                self._settled.set()

    async def wait_settled(self) -> None:
        """Wait until no receive is out (those of stopped workers have given back what they brought)."""
        while self._pending:
            if self._settled is None or self._settled.is_set():
                self._settled = anyio.Event()
            await self._settled.wait()


def take_free(slots: anyio.Semaphore, most: int) -> int:
    """Take up to ``most`` slots that are free right now, without waiting (nor yielding); how many."""
    taken = 0
    while taken < most:
        try:
            slots.acquire_nowait()
        except anyio.WouldBlock:
            break
        taken += 1
    return taken


async def gather_slots(slots: anyio.Semaphore, most: int, linger: float) -> int:
    """Wait for one free slot, then take up to ``most`` in all, waiting at most ``linger`` for more."""
    await slots.acquire()
    want = 1 + take_free(slots, most - 1)
    if want < most:
        with anyio.move_on_after(linger):
            while want < most:
                await slots.acquire()
                want += 1 + take_free(slots, most - want - 1)
    return want


class Activity:
    """When a worker became ready (every queue's first receive came back) and when it last held work."""

    def __init__(self) -> None:
        self.ready_at: float | None = None
        self.last_busy = time.monotonic()

    def busy(self) -> None:
        self.last_busy = time.monotonic()

    def idle_for(self, holding: int) -> float:
        """Seconds since the worker last held a message (0 while it holds one, or before it is ready)."""
        if holding or self.ready_at is None:
            return 0.0
        return time.monotonic() - max(self.last_busy, self.ready_at)
