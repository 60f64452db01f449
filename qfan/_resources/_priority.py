"""Priority queues: one SQS queue per level, sent to by name, consumed together by one worker.

``app.priority_queue("jobs", levels={"high": 8, "normal": 3, "low": 1})`` declares ``jobs-high``,
``jobs-normal`` and ``jobs-low`` (``jobs-high.fifo`` ... for a FIFO ``jobs.fifo``). Levels are listed highest
priority first; the numbers are the weights of ``weighted`` scheduling. How a worker shares its handlers
between the levels is :mod:`qfan._scheduler`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, Unpack

import anyio

from .._exceptions import ConfigError
from .._pipeline._delays import Delay
from .._pipeline._message import Message
from .._pipeline._outbound import MessageOptions
from .._wire._attributes import AttributeValue
from ._declaration import QueueInfo
from ._levels import MODES, Levels, Mode
from ._queue import Queue
from ._queue_options import QueueOptions

T = TypeVar("T")
R = TypeVar("R")

_LEVEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


def level_queue_name(name: str, level: str) -> str:
    """The SQS queue of a level: ``jobs`` + ``high`` -> ``jobs-high``; ``jobs.fifo`` -> ``jobs-high.fifo``."""
    stem, fifo = (name.removesuffix(".fifo"), True) if name.endswith(".fifo") else (name, False)
    return f"{stem}-{level}{'.fifo' if fifo else ''}"


def check_levels(
    name: str, levels: Mapping[str, float], mode: str, reserved: Mapping[str, int], default: str | None
) -> None:
    """Raise ``ConfigError`` for anything a priority queue cannot be declared with."""
    if not levels:
        raise ConfigError(f"priority queue {name!r}: levels must name at least one level")
    for level, weight in levels.items():
        if not isinstance(level, str) or not _LEVEL_NAME.fullmatch(level):
            raise ConfigError(
                f"priority queue {name!r}: level names are 1-40 characters of A-Z a-z 0-9 - _, got {level!r}"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1_000:
            raise ConfigError(f"priority queue {name!r}: level {level!r} weight must be in (0, 1000]")
    if mode not in MODES:
        raise ConfigError(f"priority queue {name!r}: mode must be one of {MODES}, got {mode!r}")
    for level, slots in reserved.items():
        if level not in levels:
            raise ConfigError(f"priority queue {name!r}: reserved names unknown level {level!r}")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
            raise ConfigError(f"priority queue {name!r}: reserved[{level!r}] must be an int >= 0")
    if default is not None and default not in levels:
        raise ConfigError(f"priority queue {name!r}: default {default!r} is not one of {list(levels)}")


class PriorityQueue(Generic[T]):
    """Several SQS queues, one per priority level; create it with :meth:`qfan.App.priority_queue`.

    Attributes:
        name: the priority queue's name (its levels' queues are named ``<name>-<level>``).
        levels: the level queues, highest priority first.
        weights: each level's weight in ``weighted`` mode.
        mode: ``"weighted"`` or ``"strict"``.
        reserved: handler slots each worker keeps for a level.
        default: the level ``send`` uses when no ``priority`` is given (``None``: it must be given).
    """

    def __init__(
        self,
        name: str,
        levels: Mapping[str, Queue[T]],
        weights: Mapping[str, float],
        *,
        mode: Mode = "weighted",
        reserved: Mapping[str, int] | None = None,
        default: str | None = None,
    ) -> None:
        self.name = name
        self.levels: dict[str, Queue[T]] = dict(levels)
        self.weights: dict[str, float] = dict(weights)
        self.mode: Mode = mode
        self.reserved: dict[str, int] = dict(reserved or {})
        self.default = default
        self._by_queue = {queue.name: level for level, queue in self.levels.items()}

    def __repr__(self) -> str:
        levels = ", ".join(f"{level}={weight:g}" for level, weight in self.weights.items())
        return f"<PriorityQueue {self.name!r} {self.mode} {levels}>"

    @property
    def fifo(self) -> bool:
        """Whether the level queues are FIFO queues."""
        return next(iter(self.levels.values())).fifo

    @property
    def options(self) -> QueueOptions:
        """The options every level queue was declared with (its name aside)."""
        return next(iter(self.levels.values())).options

    @property
    def dead_letter(self) -> Queue[Any] | None:
        """The dead-letter queue the levels share, if any."""
        return next(iter(self.levels.values())).dead_letter

    def consumed_levels(self) -> Levels:
        """What a worker on this priority queue consumes: its levels, weighted or strict."""
        return Levels(
            dict(self.levels),
            list(self.weights.values()),
            self.mode,
            dict(enumerate(self.reserved_slots)),
            prioritised=True,
        )

    @property
    def reserved_slots(self) -> list[int]:
        """Reserved handler slots per level, in level order."""
        return [self.reserved.get(level, 0) for level in self.levels]

    def level(self, priority: str | None = None) -> Queue[T]:
        """The queue of level ``priority`` (default: the ``default`` level)."""
        chosen = self.default if priority is None else priority
        if chosen is None:
            raise ConfigError(
                f"priority queue {self.name!r}: say which priority ({list(self.levels)}); "
                "it has no default level"
            )
        queue = self.levels.get(chosen)
        if queue is None:
            raise ConfigError(f"priority queue {self.name!r} has no level {chosen!r}: {list(self.levels)}")
        return queue

    def level_of(self, message: Message[Any]) -> str:
        """The level a received message came from."""
        level = self._by_queue.get(message.queue)
        if level is None:
            raise ConfigError(f"message {message.message_id} came from {message.queue!r}, not {self.name!r}")
        return level

    async def declare(self) -> dict[str, QueueInfo]:
        """Declare every level's queue (idempotent); returns what each declare learned, by level."""
        return await self._each(lambda queue: queue.declare())

    async def _each(self, call: Callable[[Queue[T]], Awaitable[R]]) -> dict[str, R]:
        """``call`` on every level's queue concurrently; the results by level, in level order."""
        results: dict[str, R] = {}

        async def one(level: str, queue: Queue[T]) -> None:
            results[level] = await call(queue)

        async with anyio.create_task_group() as tg:
            for level, queue in self.levels.items():
                tg.start_soon(one, level, queue)
        return {level: results[level] for level in self.levels}

    async def send(self, value: T, *, priority: str | None = None, **options: Unpack[MessageOptions]) -> str:
        """Send one message to level ``priority``; returns its SQS message id (see :meth:`Queue.send` for
        ``delay``, ``delay_until``, ``group_id``, ``dedup_id`` and ``attributes``)."""
        return await self.level(priority).send(value, **options)

    async def send_many(
        self,
        values: Iterable[T],
        *,
        priority: str | None = None,
        delay: Delay | None = None,
        group_id: str | None = None,
        dedup_id: Callable[[T], str] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> list[str]:
        """Send many messages to level ``priority`` in full batches (see :meth:`Queue.send_many`)."""
        return await self.level(priority).send_many(
            values, delay=delay, group_id=group_id, dedup_id=dedup_id, attributes=attributes
        )

    async def backlog(self) -> dict[str, int]:
        """Approximate visible messages per level (SQS's ``ApproximateNumberOfMessages``)."""
        found = await self._each(lambda queue: queue.attributes())
        return {level: int(names.get("ApproximateNumberOfMessages", 0)) for level, names in found.items()}

    async def purge(self) -> None:
        """Purge every level's queue."""
        await self._each(lambda queue: queue.purge())

    async def delete(self) -> None:
        """Delete every level's queue."""
        await self._each(lambda queue: queue.delete())
