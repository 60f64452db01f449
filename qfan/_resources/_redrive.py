"""Moving messages between queues without losing any: copy first, delete the original after."""

from __future__ import annotations

from typing import Any

import anyio

from .._pipeline._message import Message
from ._queue import Queue

#: Attributes qfan adds when it dead-letters a message; a redrive removes them again.
DEAD_LETTER_ATTRIBUTES = (
    "dead-letter-reason",
    "dead-letter-error",
    "dead-letter-receive-count",
    "dead-letter-source",
)


async def move_messages(source: Queue[Any], target: Queue[Any], *, limit: int | None = None) -> int:
    """Move messages from ``source`` to ``target`` until ``source`` looks empty (or ``limit`` moved).

    Each message is copied to ``target`` (without qfan's dead-letter attributes) and only then deleted
    from ``source``: a failure between the two leaves a duplicate, never a loss. Returns how many moved.
    """
    moved = 0
    while limit is None or moved < limit:
        wanted = 10 if limit is None else min(10, limit - moved)
        batch = await source.receive(wanted, wait=1, visibility=120)
        if not batch:
            return moved

        async def move(message: Message[Any]) -> None:
            await target.forward(message, exclude=DEAD_LETTER_ATTRIBUTES)
            await message.ack()

        async with anyio.create_task_group() as tg:
            for message in batch:
                tg.start_soon(move, message)
        moved += len(batch)
    return moved
