"""What an open App hands to its handles: SQS at once, SNS and S3 when first needed, every call retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
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
        sqs: RetryingSqs,
        hooks: HookSet | None = None,
        delays: LongDelays | None = None,
    ) -> None:
        self.sqs = sqs
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

    @classmethod
    async def open(
        cls,
        transport: Transport,
        settings: ConnectionSettings,
        retry: RetryPolicy,
        linger: float,
        stack: AsyncExitStack,
        hooks: HookSet | None = None,
        delays: LongDelays | None = None,
    ) -> Connection:
        """Open SQS into ``stack`` (closed with it, as SNS and S3 will be)."""
        data, control = await stack.enter_async_context(transport.open_sqs(settings))
        return cls(
            transport, settings, retry, linger, stack, RetryingSqs(data, control, retry), hooks, delays
        )

    async def sns(self) -> RetryingSns:
        """The SNS plane, opened on first use."""
        return await self._sns.get()

    async def s3(self) -> RetryingObjectStore:
        """The S3 plane of offloaded payloads, opened on first use."""
        return await self._s3.get()

    async def _open_sns(self) -> RetryingSns:
        plane = await self._stack.enter_async_context(self._transport.open_sns(self._settings))
        return RetryingSns(plane, self.retry)

    async def _open_s3(self) -> RetryingObjectStore:
        plane = await self._stack.enter_async_context(self._transport.open_s3(self._settings))
        return RetryingObjectStore(plane, self.retry)

    async def dynamodb(self) -> RetryingKeyValueTable:
        """The DynamoDB plane of record stores (idempotency), opened on first use."""
        return await self._dynamodb.get()

    async def _open_dynamodb(self) -> RetryingKeyValueTable:
        opener = getattr(self._transport, "open_dynamodb", None)
        if opener is None:
            raise ConfigError(f"transport {self._transport!r} does not provide DynamoDB (open_dynamodb)")
        transport: TableTransport = self._transport  # type: ignore[assignment]
        plane = await self._stack.enter_async_context(transport.open_dynamodb(self._settings))
        return RetryingKeyValueTable(plane, self.retry)
