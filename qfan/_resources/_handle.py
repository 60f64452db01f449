"""What queue and topic handles share: a name, FIFO-ness, and their state declared once per connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import anyio

from .._exceptions import QfanError
from .._pipeline._connection import Connection


class _Options(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fifo(self) -> bool | None: ...


class _State(Protocol):
    @property
    def connection(self) -> Connection: ...

    @property
    def info(self) -> Any: ...


S = TypeVar("S", bound=_State)
I = TypeVar("I")  # noqa: E741 - what declaring learned (QueueInfo, TopicInfo)


class Handle(Generic[S, I]):
    """A handle declared lazily: on first use, again when its app opens a new connection, once at a time.

    Args:
        options: the declaration (its ``name`` and ``fifo``).
        connect: the app's open connection.
    """

    def __init__(self, options: _Options, connect: Callable[[], Connection]) -> None:
        self._options = options
        self._connect = connect
        self._declared: S | None = None
        self._declare_lock = anyio.Lock()

    @property
    def name(self) -> str:
        """The queue's or topic's name."""
        return self._options.name

    @property
    def fifo(self) -> bool:
        """Whether it is FIFO."""
        return bool(self._options.fifo)

    @property
    def info(self) -> I:
        """What declaring learned (URL or ARN, attributes); raises ``QfanError`` before the first declare."""
        info: I = self._known().info
        return info

    async def declare(self) -> I:
        """Create it if missing, else check its attributes against the declaration (see ``on_conflict``
        for queues; a topic's differences raise ``TopicConflict``). Idempotent; returns :attr:`info`."""
        info: I = (await self._state()).info
        return info

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{' fifo' if self.fifo else ''}>"

    def _known(self) -> S:
        """The declared state; ``QfanError`` before the first declare."""
        if self._declared is None:
            kind = type(self).__name__.lower()
            raise QfanError(f"{kind} {self.name!r} is not declared yet: await {kind}.declare()")
        return self._declared

    async def _state(self) -> S:
        connection = self._connect()
        declared = self._declared
        if declared is not None and declared.connection is connection:
            return declared
        async with self._declare_lock:
            if self._declared is None or self._declared.connection is not connection:
                self._declared = await self._declare_on(connection)
            return self._declared

    async def _declare_on(self, connection: Connection) -> S:
        raise NotImplementedError
