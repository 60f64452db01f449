"""Iterating over a queue with bounded prefetch: never more received-but-unhandled messages than the bound."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable
from typing import Generic, Protocol, TypeVar

import anyio

from .._exceptions import ConfigError, QfanError
from .._pipeline._message import Message

T = TypeVar("T")

logger = logging.getLogger("qfan")


class _Receive(Protocol[T]):
    def __call__(
        self, max_messages: int = 10, *, wait: int | None = None, visibility: int | None = None
    ) -> Awaitable[list[Message[T]]]: ...


class Consumer(Generic[T]):
    """An async iterator over a queue's messages; see :meth:`qfan.Queue.consume`.

    It receives only when its buffer is empty, asking for at most ``prefetch`` messages (in parallel
    receives of up to 10), so it never holds more than ``prefetch`` messages the caller has not taken.
    On a FIFO queue (``ordered``) it makes one receive at a time, so messages are handed out in the order
    SQS released them.
    """

    def __init__(
        self,
        receive: _Receive[T],
        *,
        prefetch: int,
        wait: int | None,
        visibility: int | None,
        ordered: bool = False,
    ) -> None:
        if isinstance(prefetch, bool) or not 1 <= prefetch <= 1_000:
            raise ConfigError(f"prefetch must be between 1 and 1000, got {prefetch!r}")
        self._receive = receive
        self._prefetch = prefetch
        self._wait = wait
        self._visibility = visibility
        self._ordered = ordered
        self._buffer: deque[Message[T]] = deque()
        self._closed = False

    @property
    def buffered(self) -> int:
        """Messages received but not yet handed out."""
        return len(self._buffer)

    def __aiter__(self) -> Consumer[T]:
        return self

    async def __anext__(self) -> Message[T]:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._refill()
        return self._buffer.popleft()

    async def _refill(self) -> None:
        if self._ordered:
            self._buffer.extend(
                await self._receive(min(self._prefetch, 10), wait=self._wait, visibility=self._visibility)
            )
            return
        received: list[Message[T]] = []

        async def receive(count: int) -> None:
            received.extend(await self._receive(count, wait=self._wait, visibility=self._visibility))

        async with anyio.create_task_group() as tg:
            remaining = self._prefetch
            while remaining > 0:
                tg.start_soon(receive, min(remaining, 10))
                remaining -= 10
        self._buffer.extend(received)

    async def aclose(self) -> None:
        """Stop iterating and make the buffered messages visible again at once."""
        self._closed = True
        pending = list(self._buffer)
        self._buffer.clear()

        async def release(message: Message[T]) -> None:
            try:
                await message.nack(0)
            except QfanError as exc:  # it will still reappear when its visibility times out
                logger.warning("could not release message %s: %s", message.message_id, exc)

        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for message in pending:
                    tg.start_soon(release, message)

    async def __aenter__(self) -> Consumer[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
