"""The App: the user's entry point. It holds the declared queues and owns the AWS connection."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio

from ._codec import Format
from ._exceptions import ConfigError, QfanError
from ._queue import Queue
from ._queue_options import Encryption, OnConflict, QueueOptions
from ._transport import ConnectionSettings, RetryPolicy, SqsConnection, open_sqs

T = TypeVar("T")


class App:
    """Connection, topology and (later) workers of one application.

    Use it as an async context manager: entering opens one pooled aiobotocore client and declares every
    queue registered with :meth:`queue` (idempotently); leaving closes the client.

    Where to connect follows AWS conventions: an explicit ``endpoint_url`` > ``AWS_ENDPOINT_URL_SQS`` >
    ``AWS_ENDPOINT_URL`` > AWS itself; region and credentials come from the arguments, else the usual
    chain (environment, profile, instance role).

    Args:
        name: the application's name (used to name and tag resources qfan creates for it).
        region: AWS region; default from ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile.
        endpoint_url: endpoint for every service (an emulator, a VPC endpoint).
        sqs_endpoint_url: endpoint for SQS only; wins over ``endpoint_url``.
        profile: a named profile from the shared AWS config files.
        access_key_id, secret_access_key, session_token: explicit credentials.
        retry: how transient failures are retried.
        linger: seconds a batch waits for concurrent entries before it is sent.
        max_connections: size of the HTTP connection pool.
        declare_on_start: declare registered queues when the app is entered.
    """

    def __init__(
        self,
        name: str = "qfan",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        sqs_endpoint_url: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        retry: RetryPolicy | None = None,
        linger: float = 0.001,
        max_connections: int = 64,
        declare_on_start: bool = True,
    ) -> None:
        if not 0 <= linger <= 1:
            raise ConfigError(f"linger must be between 0 and 1 second, got {linger!r}")
        self.name = name
        self.settings = ConnectionSettings(
            region=region,
            endpoint_urls={"sqs": sqs_endpoint_url or endpoint_url},
            profile=profile,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            max_connections=max_connections,
        )
        self.retry = retry or RetryPolicy()
        self.linger = linger
        self.declare_on_start = declare_on_start
        self._queues: dict[str, Queue[Any]] = {}
        self._connection: SqsConnection | None = None
        self._stack: AsyncExitStack | None = None

    # -- topology -------------------------------------------------------------------------------------

    @overload
    def queue(
        self,
        name: str,
        type: type[T],
        *,
        fifo: bool | None = ...,
        content_based_dedup: bool | None = ...,
        high_throughput: bool | None = ...,
        visibility_timeout: int | None = ...,
        retention: int | None = ...,
        receive_wait: int | None = ...,
        delay: int | None = ...,
        max_message_size: int | None = ...,
        dead_letter: Queue[Any] | None = ...,
        max_receives: int = ...,
        encryption: Encryption | None = ...,
        tags: Mapping[str, str] | None = ...,
        format: Format = ...,
        on_conflict: OnConflict = ...,
        create: bool = ...,
    ) -> Queue[T]: ...

    @overload
    def queue(
        self,
        name: str,
        *,
        fifo: bool | None = ...,
        content_based_dedup: bool | None = ...,
        high_throughput: bool | None = ...,
        visibility_timeout: int | None = ...,
        retention: int | None = ...,
        receive_wait: int | None = ...,
        delay: int | None = ...,
        max_message_size: int | None = ...,
        dead_letter: Queue[Any] | None = ...,
        max_receives: int = ...,
        encryption: Encryption | None = ...,
        tags: Mapping[str, str] | None = ...,
        format: Format = ...,
        on_conflict: OnConflict = ...,
        create: bool = ...,
    ) -> Queue[Any]: ...

    def queue(
        self,
        name: str,
        type: Any = Any,
        *,
        fifo: bool | None = None,
        content_based_dedup: bool | None = None,
        high_throughput: bool | None = None,
        visibility_timeout: int | None = None,
        retention: int | None = None,
        receive_wait: int | None = None,
        delay: int | None = None,
        max_message_size: int | None = None,
        dead_letter: Queue[Any] | None = None,
        max_receives: int = 5,
        encryption: Encryption | None = None,
        tags: Mapping[str, str] | None = None,
        format: Format = "json",
        on_conflict: OnConflict = "error",
        create: bool = True,
    ) -> Queue[Any]:
        """Register a queue and return its handle (declared when the app opens, or on first use).

        Args:
            name: queue name; a FIFO queue's name ends in ``.fifo``.
            type: what bodies decode into (a ``msgspec.Struct``, ``dict``, ``str``, ...; default: any JSON).
            fifo: FIFO queue (default: inferred from the ``.fifo`` suffix).
            content_based_dedup: FIFO: derive dedup ids from the body's SHA-256.
            high_throughput: FIFO: dedup and throughput per message group (high-throughput mode).
            visibility_timeout: seconds a received message stays hidden (0 .. 12 h).
            retention: seconds messages are kept (60 s .. 14 days).
            receive_wait: the queue's long-poll wait (0-20 s); receives default to 20 s.
            delay: seconds every new message stays invisible (0-900).
            max_message_size: bytes (1,024 .. 1,048,576).
            dead_letter: the queue that receives messages after ``max_receives`` failed receives.
            max_receives: receives before a message is dead-lettered (1-1000).
            encryption: ``SqsManagedEncryption()`` or ``KmsEncryption(key_id)``.
            tags: queue tags.
            format: ``"json"`` or ``"msgpack"`` for bodies that are not ``str``/``bytes``.
            on_conflict: an existing queue with other attributes is an ``"error"`` or gets ``"update"``d.
            create: create the queue when missing; ``False`` only looks it up (``QueueNotFound`` if absent).
        """
        options = QueueOptions(
            name=name,
            fifo=name.endswith(".fifo") if fifo is None else fifo,
            content_based_dedup=content_based_dedup,
            high_throughput=high_throughput,
            visibility_timeout=visibility_timeout,
            retention=retention,
            receive_wait=receive_wait,
            delay=delay,
            max_message_size=max_message_size,
            max_receives=max_receives,
            encryption=encryption,
            tags=dict(tags or {}),
            on_conflict=on_conflict,
            create=create,
        )
        if name in self._queues:
            raise ConfigError(
                f"queue {name!r} is already registered on this app: reuse the handle it returned"
            )
        queue: Queue[Any] = Queue(
            options, type=type, format=format, dead_letter=dead_letter, connect=self._sqs
        )
        self._queues[name] = queue
        return queue

    @property
    def queues(self) -> Mapping[str, Queue[Any]]:
        """The registered queues, by name."""
        return dict(self._queues)

    async def declare(self) -> None:
        """Declare every registered queue (dead-letter queues first), concurrently and idempotently.

        If declarations fail, the first failure (in registration order) is raised, the others noted on it.
        """
        errors: dict[str, QfanError] = {}

        async def declare(queue: Queue[Any]) -> None:
            try:
                await queue.declare()
            except QfanError as exc:
                errors[queue.name] = exc

        async with anyio.create_task_group() as tg:
            for queue in self._queues.values():
                tg.start_soon(declare, queue)
        failed = [errors[name] for name in self._queues if name in errors]
        if failed:
            for other in failed[1:]:
                failed[0].add_note(f"also failed: {type(other).__name__}: {other}")
            raise failed[0]

    # -- connection -----------------------------------------------------------------------------------

    def _sqs(self) -> SqsConnection:
        if self._connection is None:
            raise QfanError(f"app {self.name!r} is not open: use 'async with app:'")
        return self._connection

    async def __aenter__(self) -> App:
        if self._stack is not None:
            raise QfanError(f"app {self.name!r} is already open")
        async with AsyncExitStack() as stack:
            sqs = await stack.enter_async_context(open_sqs(self.settings))
            self._connection = SqsConnection(data=sqs, control=sqs, retry=self.retry, linger=self.linger)
            if self.declare_on_start:
                try:
                    await self.declare()
                except BaseException:
                    self._connection = None
                    raise
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._connection = None
        if stack is not None:
            await stack.aclose()
