"""The App: the user's entry point. It holds the declared queues and owns the AWS connection."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

import anyio

from ._codec import Format
from ._exceptions import ConfigError, QfanError
from ._offload import Offload
from ._queue import Queue
from ._queue_options import QueueOptions, QueueSettings
from ._transport import ConnectionSettings, ObjectStore, RetryPolicy, SqsConnection, open_s3, open_sqs

T = TypeVar("T")


class App:
    """Connection, topology and (later) workers of one application.

    Use it as an async context manager: entering opens one pooled aiobotocore client (and an S3 client when
    a queue offloads payloads) and declares every queue registered with :meth:`queue` (idempotently);
    leaving closes the clients.

    Where to connect follows AWS conventions: an explicit ``endpoint_url`` > ``AWS_ENDPOINT_URL_SQS`` >
    ``AWS_ENDPOINT_URL`` > AWS itself; region and credentials come from the arguments, else the usual
    chain (environment, profile, instance role).

    Args:
        name: the application's name (used to name and tag resources qfan creates for it).
        region: AWS region; default from ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile.
        endpoint_url: endpoint for every service (an emulator, a VPC endpoint).
        sqs_endpoint_url: endpoint for SQS only; wins over ``endpoint_url``.
        s3_endpoint_url: endpoint for S3 only (offloaded payloads); wins over ``endpoint_url``.
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
        s3_endpoint_url: str | None = None,
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
            endpoint_urls={"sqs": sqs_endpoint_url or endpoint_url, "s3": s3_endpoint_url or endpoint_url},
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
        dead_letter: Queue[Any] | None = ...,
        offload: Offload | None = ...,
        format: Format = ...,
        **options: Unpack[QueueSettings],
    ) -> Queue[T]: ...

    @overload
    def queue(
        self,
        name: str,
        *,
        dead_letter: Queue[Any] | None = ...,
        offload: Offload | None = ...,
        format: Format = ...,
        **options: Unpack[QueueSettings],
    ) -> Queue[Any]: ...

    def queue(
        self,
        name: str,
        type: Any = Any,
        *,
        dead_letter: Queue[Any] | None = None,
        offload: Offload | None = None,
        format: Format = "json",
        **options: Unpack[QueueSettings],
    ) -> Queue[Any]:
        """Register a queue and return its handle (declared when the app opens, or on first use).

        Args:
            name: queue name; a FIFO queue's name ends in ``.fifo``.
            type: what bodies decode into (a ``msgspec.Struct``, ``dict``, ``str``, ...; default: any JSON).
            dead_letter: the queue (handle) that receives messages after ``max_receives`` receives.
            offload: send large bodies through S3, compatible with AWS's extended clients (see
                :class:`Offload`).
            format: ``"json"`` or ``"msgpack"`` for bodies that are not ``str``/``bytes``.
            **options: the queue's attributes and declaration behaviour, see :class:`QueueSettings`.
        """
        if name in self._queues:
            raise ConfigError(f"queue {name!r} is already registered on this app: reuse its handle")
        queue: Queue[Any] = Queue(
            QueueOptions(name=name, **options),
            type=type,
            format=format,
            dead_letter=dead_letter,
            connect=self._sqs,
            offload=offload,
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
            s3: ObjectStore | None = None
            if any(queue.offload is not None for queue in self._queues.values()):
                s3 = await stack.enter_async_context(open_s3(self.settings))
            self._connection = SqsConnection(
                data=sqs, control=sqs, retry=self.retry, linger=self.linger, s3=s3
            )
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
