"""What an open App hands to its handles: SQS at once, SNS and S3 when first needed, every call retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Generic, TypeVar

import anyio

from .._exceptions import ConfigError
from .._transport import (
    ConnectionSettings,
    RetryingKeyValueTable,
    RetryingObjectStore,
    RetryingSns,
    RetryingSqs,
    RetryPolicy,
    TableTransport,
    Transport,
)
from ._delays import LongDelays
from ._hooks import HookSet

T = TypeVar("T")
P = TypeVar("P")


class _Lazy(Generic[T]):
    """A value made by ``make`` on the first :meth:`get` (once, however many tasks ask at that time)."""

    def __init__(self, make: Callable[[], Awaitable[T]]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = anyio.Lock()

    async def get(self) -> T:
        if self._value is None:
            async with self._lock:
                if self._value is None:
                    self._value = await self._make()
        return self._value


class Connection:
    """An open connection to AWS (or to whatever planes the transport provides).

    SQS is opened with the connection; SNS and S3 are opened the first time something asks for them, into
    the same exit stack, so what is registered on an app (and when) never decides which clients it opened.

    Attributes:
        sqs: SQS's data and control planes, every call retried.
        linger: seconds a batch waits for more entries before it is sent.
        retry: the policy every call goes through.
        hooks: the app's pipeline hooks.
        delays: how delays beyond one SQS hop (15 minutes) travel.
    """

    def __init__(
        self,
        transport: Transport,
        settings: ConnectionSettings,
        retry: RetryPolicy,
        linger: float,
        stack: AsyncExitStack,
        hooks: HookSet | None = None,
        delays: LongDelays | None = None,
    ) -> None:
        self.sqs: RetryingSqs  # by start()
        self.delays = delays or LongDelays()
        self.hooks = hooks if hooks is not None else HookSet()
        self.linger = linger
        self.retry = retry
        self._transport = transport
        self._settings = settings
        self._stack = stack
        self._sns = _Lazy(self._open_sns)
        self._s3 = _Lazy(self._open_s3)
        self._dynamodb = _Lazy(self._open_dynamodb)

    async def start(self) -> Connection:
        """Open SQS into the stack (closed with it, as SNS and S3 will be); the connection, now usable."""
        data, control = await self._stack.enter_async_context(self._transport.open_sqs(self._settings))
        self.sqs = RetryingSqs(data, control, self.retry)
        return self

    async def sns(self) -> RetryingSns:
        """The SNS plane, opened on first use."""
        return await self._sns.get()

    async def s3(self) -> RetryingObjectStore:
        """The S3 plane of offloaded payloads, opened on first use."""
        return await self._s3.get()

    async def dynamodb(self) -> RetryingKeyValueTable:
        """The DynamoDB plane of record stores (idempotency), opened on first use."""
        return await self._dynamodb.get()

    async def _open(self, opener: Callable[[ConnectionSettings], AbstractAsyncContextManager[P]]) -> P:
        """A plane opened into the connection's stack (closed with it)."""
        return await self._stack.enter_async_context(opener(self._settings))

    async def _open_sns(self) -> RetryingSns:
        return RetryingSns(await self._open(self._transport.open_sns), self.retry)

    async def _open_s3(self) -> RetryingObjectStore:
        return RetryingObjectStore(await self._open(self._transport.open_s3), self.retry)

    async def _open_dynamodb(self) -> RetryingKeyValueTable:
        if not isinstance(self._transport, TableTransport):
            raise ConfigError(f"transport {self._transport!r} does not provide DynamoDB (open_dynamodb)")
        return RetryingKeyValueTable(await self._open(self._transport.open_dynamodb), self.retry)
