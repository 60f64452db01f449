"""Queue backlog for the gauges: one poller per queue (whatever the number of workers on it), reading
``GetQueueAttributes`` at a low rate through the queue's control plane."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from .._exceptions import QfanError
from .._resources._queue import Queue

logger = logging.getLogger("qfan")


def backlog_queues(queues: Iterable[Queue[Any]]) -> list[Queue[Any]]:
    """Each queue once, followed by its dead-letter queue (DLQ depth is a backlog too)."""
    seen: dict[str, Queue[Any]] = {}
    for queue in queues:
        for each in (queue, queue.dead_letter):
            if each is not None and each.name not in seen:
                seen[each.name] = each
    return list(seen.values())


async def poll_backlog(
    queues: Iterable[Queue[Any]], interval: float, record: Callable[[str, dict[str, str]], None]
) -> None:
    """Read every queue's attributes every ``interval`` seconds and ``record`` them, until cancelled."""

    async def poll(queue: Queue[Any]) -> None:
        while True:
            try:
                record(queue.name, await queue.attributes())
            except QfanError as exc:  # a missed reading only leaves the gauge at its last value
                logger.warning("backlog of %s not read: %s", queue.name, exc)
            await anyio.sleep(interval)

    async with anyio.create_task_group() as tg:
        for queue in backlog_queues(queues):
            tg.start_soon(poll, queue)
