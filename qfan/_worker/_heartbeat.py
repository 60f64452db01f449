"""Keeps held messages invisible while they wait or run, so a long handler is never delivered twice."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio

from .._exceptions import QfanError
from .._pipeline._message import Message

logger = logging.getLogger("qfan")


class VisibilityHeartbeat:
    """Extends the visibility of tracked messages before it runs out, up to ``max_total`` seconds.

    Every tick, each message whose visibility ends within half a timeout is extended by a full
    ``visibility`` (the queue coalesces these into ChangeMessageVisibilityBatch calls). A message held
    longer than ``max_total`` seconds is no longer extended: SQS caps a message's visibility at 12 hours.
    """

    def __init__(self, visibility: int, max_total: float) -> None:
        self.visibility = max(1, visibility)
        self.max_total = max_total
        self.tick = max(0.2, self.visibility / 4)
        self._tracked: dict[Message[Any], tuple[float, float]] = {}  # message -> (held since, visible at)
        self.extensions = 0

    def track(self, message: Message[Any]) -> None:
        """Start keeping ``message`` invisible (call as soon as it is received)."""
        now = time.monotonic()
        self._tracked[message] = (now, now + self.visibility)

    def untrack(self, message: Message[Any]) -> None:
        """Stop extending ``message`` (it was settled)."""
        self._tracked.pop(message, None)

    async def run(self) -> None:
        """Extend due messages every tick, until cancelled."""
        while True:
            await anyio.sleep(self.tick)
            now = time.monotonic()
            due = [
                message
                for message, (since, visible_at) in self._tracked.items()
                if visible_at - now < self.visibility / 2 and now - since + self.visibility <= self.max_total
            ]
            if due:
                async with anyio.create_task_group() as tg:
                    for message in due:
                        tg.start_soon(self._extend, message, now)

    async def _extend(self, message: Message[Any], now: float) -> None:
        try:
            await message.extend(self.visibility)
        except QfanError as exc:
            # The handle is dead (the message expired and went elsewhere): nothing more to keep alive.
            logger.warning("visibility of message %s not extended: %s", message.message_id, exc)
            self.untrack(message)
            return
        if message in self._tracked:
            self._tracked[message] = (self._tracked[message][0], now + self.visibility)
            self.extensions += 1
