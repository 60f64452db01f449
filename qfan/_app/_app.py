"""The App: the user's entry point. It holds the declared queues and owns the AWS connection."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc

from .._exceptions import ConfigError, QfanError
from .._lambda import LambdaRegistry, TopicHandler
from .._pipeline._connection import Connection
from .._pipeline._delays import LongDelays
from .._pipeline._hooks import HookSet, PipelineHooks
from .._resources._priority import PriorityQueue
from .._resources._queue import Queue
from .._resources._subscription import Subscription
from .._resources._topic import Topic
from .._rpc import (
    ReplyRouter,
    ReplySender,
    check_sweep_idle,
)
from .._transport import (
    AwsTransport,
    ConnectionSettings,
    RetryPolicy,
    Transport,
    TransportName,
)
from .._worker._engine import WorkerEngine
from .._worker._worker import Middleware, Worker
from ._running import Hook
from ._topology import TopologyRegistry
from ._workers import WorkerRegistry


class App(TopologyRegistry, WorkerRegistry, LambdaRegistry):
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
        sns_endpoint_url: endpoint for SNS only; wins over ``endpoint_url``.
        s3_endpoint_url: endpoint for S3 only (offloaded payloads); wins over ``endpoint_url``.
        profile: a named profile from the shared AWS config files.
        access_key_id, secret_access_key, session_token: explicit credentials.
        retry: how transient failures are retried.
        linger: seconds a batch waits for concurrent entries before it is sent.
        max_connections: size of the HTTP connection pool.
        declare_on_start: declare the registered topology when the app is entered.
        sweep_reply_queues: when set, entering the app deletes reply queues (of any app) whose heartbeat
            is older than this many seconds — left behind by crashed processes.
        transport: how the app talks to AWS. ``"fast"``: the per-message SQS calls (send, receive,
            delete, change visibility) are signed SQS JSON requests over a pooled aiohttp session;
            ``"botocore"``: through aiobotocore like every other call. Or any object with ``open_sqs``,
            ``open_sns`` and ``open_s3`` (the :class:`qfan._transport.Transport` Protocol), such as
            ``qfan.testing.MemoryTransport()``. Default: ``QFAN_TRANSPORT``, else ``"fast"``. Every call
            goes through ``retry`` whatever the transport.
        hooks: :class:`PipelineHooks` on the send and receive pipelines (instrumentation, policies).
        long_delays: how delays beyond 15 minutes travel (:class:`LongDelays`: hop length, clock).
    """

    def __init__(
        self,
        name: str = "qfan",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        sqs_endpoint_url: str | None = None,
        sns_endpoint_url: str | None = None,
        s3_endpoint_url: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        retry: RetryPolicy | None = None,
        linger: float = 0.001,
        max_connections: int = 64,
        declare_on_start: bool = True,
        sweep_reply_queues: float | None = None,
        transport: TransportName | Transport | None = None,
        hooks: Iterable[PipelineHooks] = (),
        long_delays: LongDelays | None = None,
    ) -> None:
        self._transport: Transport = (
            AwsTransport(transport) if transport is None or isinstance(transport, str) else transport
        )
        if not isinstance(self._transport, Transport):
            raise ConfigError(
                f"transport must be 'fast', 'botocore' or an object with open_sqs/open_sns/open_s3, "
                f"got {transport!r}"
            )
        self.transport: str | Transport = (
            self._transport.name if isinstance(self._transport, AwsTransport) else self._transport
        )
        if not 0 <= linger <= 1:
            raise ConfigError(f"linger must be between 0 and 1 second, got {linger!r}")
        self.name = name
        self.long_delays = long_delays or LongDelays()
        self.settings = ConnectionSettings(
            region=region,
            endpoint_urls={
                "sqs": sqs_endpoint_url or endpoint_url,
                "sns": sns_endpoint_url or endpoint_url,
                "s3": s3_endpoint_url or endpoint_url,
                "dynamodb": endpoint_url,
            },
            profile=profile,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            max_connections=max_connections,
        )
        self.retry = retry or RetryPolicy()
        self.linger = linger
        self.declare_on_start = declare_on_start
        if sweep_reply_queues is not None:
            check_sweep_idle(sweep_reply_queues)
        self.sweep_idle = sweep_reply_queues
        self._queues: dict[str, Queue[Any]] = {}
        self._priority_queues: dict[str, PriorityQueue[Any]] = {}
        self._topics: dict[str, Topic[Any]] = {}
        self._subscriptions: list[Subscription] = []
        self._workers: dict[str, Worker] = {}
        self._topic_handlers: dict[str, TopicHandler] = {}
        self._middleware: list[Middleware] = []
        self._hooks = HookSet(hooks)
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._stop: anyio.Event | None = None
        self._engines: list[WorkerEngine] = []
        self._replies = ReplyRouter(name)
        self._reply_sender = ReplySender()
        self._services: anyio.abc.TaskGroup | None = None
        self._connection: Connection | None = None
        self._stack: AsyncExitStack | None = None

    # -- connection -----------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the app is entered (its connection open)."""
        return self._connection is not None

    @property
    def connection(self) -> Connection:
        """The open connection (retried planes, hooks) tools such as :mod:`qfan.testing` build on.

        Raises ``QfanError`` when the app is not open.
        """
        return self._connect()

    def _connect(self) -> Connection:
        if self._connection is None:
            raise QfanError(f"app {self.name!r} is not open: use 'async with app:'")
        return self._connection

    async def __aenter__(self) -> App:
        if self._stack is not None:
            raise QfanError(f"app {self.name!r} is already open")
        # One stack for the app's whole life: SQS is opened into it now, SNS and S3 when a topic or an
        # offloading queue first needs them (so registration order and time do not matter).
        stack = AsyncExitStack()
        try:
            self._add_telemetry()
            self._connection = await Connection(
                self._transport, self.settings, self.retry, self.linger, stack, self._hooks, self.long_delays
            ).start()
            if self.declare_on_start:
                await self.declare()
            if self.sweep_idle is not None:
                await self.sweep_reply_queues(self.sweep_idle)
            self._services = await stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            self._connection = None
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if self._services is not None:  # stop the reply loop before its queue goes away
            self._services.cancel_scope.cancel()
            self._services = None
        if self._connection is not None:
            await self._replies.close(self._connection)
        self._connection = None
        if stack is not None:
            await stack.aclose()
