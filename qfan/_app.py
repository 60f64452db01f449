"""The App: the user's entry point. It holds the declared queues and owns the AWS connection."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

import anyio
import anyio.abc

from ._backoff import Backoff
from ._codec import Format
from ._connection import Connection
from ._engine import WorkerEngine
from ._exceptions import ConfigError, QfanError
from ._handler import Handler
from ._hooks import HookSet, PipelineHooks
from ._offload import Offload
from ._priority import PriorityQueue, check_levels, level_queue_name
from ._queue import Queue
from ._queue_options import QueueOptions, QueueSettings
from ._rpc import (
    ReplyAddresses,
    ReplyRouter,
    ReplySender,
    Responder,
    RpcStats,
    check_sweep_idle,
    sweep_reply_queues,
)
from ._scheduler import Mode
from ._subscription import FilterScope, Subscription
from ._topic import ThroughputScope, Topic, TopicOptions
from ._topology import PlanItem, plan
from ._transport import (
    AwsTransport,
    ConnectionSettings,
    RetryPolicy,
    Transport,
    TransportName,
)
from ._worker import MAX_VISIBILITY, Middleware, Worker, WorkerStats

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[[], Awaitable[None]]

logger = logging.getLogger("qfan")


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
        self.settings = ConnectionSettings(
            region=region,
            endpoint_urls={
                "sqs": sqs_endpoint_url or endpoint_url,
                "sns": sns_endpoint_url or endpoint_url,
                "s3": s3_endpoint_url or endpoint_url,
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
        self._middleware: list[Middleware] = []
        self._hooks = HookSet(hooks)
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._stop: anyio.Event | None = None
        self._replies = ReplyRouter(name)
        self._reply_sender = ReplySender()
        self._services: anyio.abc.TaskGroup | None = None
        self._connection: Connection | None = None
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
            connect=self._connect,
            offload=offload,
        )
        self._queues[name] = queue
        return queue

    @overload
    def priority_queue(
        self,
        name: str,
        type: type[T],
        *,
        levels: Mapping[str, float],
        mode: Mode = ...,
        reserved: Mapping[str, int] | None = ...,
        default: str | None = ...,
        dead_letter: Queue[Any] | None = ...,
        offload: Offload | None = ...,
        format: Format = ...,
        **options: Unpack[QueueSettings],
    ) -> PriorityQueue[T]: ...

    @overload
    def priority_queue(
        self,
        name: str,
        *,
        levels: Mapping[str, float],
        mode: Mode = ...,
        reserved: Mapping[str, int] | None = ...,
        default: str | None = ...,
        dead_letter: Queue[Any] | None = ...,
        offload: Offload | None = ...,
        format: Format = ...,
        **options: Unpack[QueueSettings],
    ) -> PriorityQueue[Any]: ...

    def priority_queue(
        self,
        name: str,
        type: Any = Any,
        *,
        levels: Mapping[str, float],
        mode: Mode = "weighted",
        reserved: Mapping[str, int] | None = None,
        default: str | None = None,
        dead_letter: Queue[Any] | None = None,
        offload: Offload | None = None,
        format: Format = "json",
        **options: Unpack[QueueSettings],
    ) -> PriorityQueue[Any]:
        """Register a priority queue: one SQS queue per level (``<name>-<level>``), consumed together.

        Args:
            name: the priority queue's name (``.fifo`` suffix: every level is a FIFO queue).
            type: what bodies decode into (as for :meth:`queue`).
            levels: level name -> weight, highest priority first, e.g. ``{"high": 8, "normal": 3, "low": 1}``.
            mode: ``"weighted"``: when several levels have backlog, a worker starts messages from them in
                proportion to their weights, and levels without backlog leave their share to the others;
                ``"strict"``: a lower level runs only while every higher level is empty.
            reserved: handler slots a worker keeps for a level, e.g. ``{"high": 2}`` (out of its
                ``concurrency``; other levels never use them).
            default: the level :meth:`PriorityQueue.send` uses without ``priority=`` (default: none, say it).
            dead_letter, offload, format, options: as for :meth:`queue`, applied to every level's queue.
        """
        check_levels(name, levels, mode, reserved or {}, default)
        if name in self._priority_queues:
            raise ConfigError(f"priority queue {name!r} is already registered on this app: reuse its handle")
        queues = {
            level: self.queue(
                level_queue_name(name, level),
                type,
                dead_letter=dead_letter,
                offload=offload,
                format=format,
                **options,
            )
            for level in levels
        }
        queue: PriorityQueue[Any] = PriorityQueue(
            name, queues, levels, mode=mode, reserved=reserved, default=default
        )
        self._priority_queues[name] = queue
        return queue

    @property
    def queues(self) -> Mapping[str, Queue[Any]]:
        """The registered queues, by name."""
        return dict(self._queues)

    def topic(
        self,
        name: str,
        type: Any = Any,
        *,
        fifo: bool | None = None,
        content_based_dedup: bool | None = None,
        kms_key: str | None = None,
        throughput_scope: ThroughputScope | None = None,
        tags: Mapping[str, str] | None = None,
        format: Format = "json",
        offload: Offload | None = None,
    ) -> Topic[Any]:
        """Register an SNS topic and return its handle (declared when the app opens, or on first use).

        Args:
            name: topic name; a FIFO topic's name ends in ``.fifo``.
            type: the type of the values published (for type checkers; encoding is by value).
            fifo: FIFO topic (default: inferred from the ``.fifo`` suffix).
            content_based_dedup: FIFO: derive dedup ids from the body.
            kms_key: KMS key for server-side encryption.
            throughput_scope: FIFO: ``"Topic"`` or ``"MessageGroup"`` (high throughput).
            tags: topic tags (set on creation).
            format: ``"json"`` or ``"msgpack"`` for bodies that are not ``str``/``bytes``.
            offload: publish bodies over SNS's 256 KiB limit through S3, in the format AWS's SNS extended
                client writes; subscribed queues read them when their own ``offload`` policy allows the
                bucket.
        """
        if name in self._topics:
            raise ConfigError(f"topic {name!r} is already registered on this app: reuse its handle")
        options = TopicOptions(name, fifo, content_based_dedup, kms_key, throughput_scope, dict(tags or {}))
        topic: Topic[Any] = Topic(options, format=format, connect=self._connect, offload=offload)
        self._topics[name] = topic
        return topic

    def subscribe(
        self,
        topic: Topic[Any],
        queue: Queue[Any],
        *,
        raw: bool = True,
        filter_policy: Mapping[str, Any] | None = None,
        filter_scope: FilterScope = "MessageAttributes",
        dead_letter: Queue[Any] | None = None,
    ) -> Subscription:
        """Subscribe ``queue`` to ``topic`` (declared with the topology, idempotently).

        Declaring also adds the statement letting the topic send to the queue to the queue's policy
        (merged with the policy's other statements), which AWS requires and emulators don't check.
        """
        if self._topics.get(topic.name) is not topic or self._queues.get(queue.name) is not queue:
            raise ConfigError(f"subscribe {topic.name!r} -> {queue.name!r}: register both on this app first")
        subscription = Subscription(topic, queue, raw, filter_policy, filter_scope, dead_letter)
        if any(s.name == subscription.name for s in self._subscriptions):
            raise ConfigError(f"{subscription.name} is already subscribed on this app")
        self._subscriptions.append(subscription)
        queue.accept_topic(topic.name)  # envelopes claiming any other topic are refused from now on
        return subscription

    @property
    def topics(self) -> Mapping[str, Topic[Any]]:
        """The registered topics, by name."""
        return dict(self._topics)

    @property
    def subscriptions(self) -> list[Subscription]:
        """The registered subscriptions."""
        return list(self._subscriptions)

    async def declare(self) -> None:
        """Apply the topology idempotently: queues (dead-letter queues first), topics, then subscriptions
        with their queue policy statements.

        If declarations fail, the first failure (in registration order) is raised, the others noted on it.
        """
        await self._declare_all(list(self._queues.values()), lambda queue: queue.declare())
        await self._declare_all(list(self._topics.values()), lambda topic: topic.declare())
        if self._subscriptions:
            sns = await self._connect().sns()
            await self._declare_all(self._subscriptions, lambda subscription: subscription.declare(sns))

    @staticmethod
    async def _declare_all(resources: list[Any], declare: Callable[[Any], Awaitable[Any]]) -> None:
        errors: dict[int, QfanError] = {}

        async def one(index: int, resource: Any) -> None:
            try:
                await declare(resource)
            except QfanError as exc:
                errors[index] = exc

        async with anyio.create_task_group() as tg:
            for index, resource in enumerate(resources):
                tg.start_soon(one, index, resource)
        failed = [errors[index] for index in sorted(errors)]
        if failed:
            for other in failed[1:]:
                failed[0].add_note(f"also failed: {type(other).__name__}: {other}")
            raise failed[0]

    async def plan(self) -> list[PlanItem]:
        """What :meth:`declare` would do, resource by resource, without changing anything.

        Works on an app opened with ``declare_on_start=False`` (``qfan declare --dry-run`` does that).
        """
        connection = self._connect()
        return await plan(
            connection,
            await connection.sns() if self._topics or self._subscriptions else None,
            list(self._queues.values()),
            list(self._topics.values()),
            self._subscriptions,
        )

    # -- workers --------------------------------------------------------------------------------------

    def worker(
        self,
        queue: Queue[Any] | PriorityQueue[Any],
        *,
        name: str | None = None,
        concurrency: int = 10,
        prefetch: int | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
        visibility_timeout: int | None = None,
        max_extension: int = MAX_VISIBILITY,
        batch_size: int | None = None,
        receive_wait: int | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function as the handler of ``queue``; the function is returned unchanged.

        Args:
            queue: a queue registered on this app, or a priority queue (the worker consumes all its levels,
                sharing its handlers between them as the priority queue's ``mode`` says; it holds up to
                ``concurrency + prefetch`` messages per level).
            name: the worker's name (default: the function's qualified name).
            concurrency: handlers running at once (FIFO queues: message groups at once).
            prefetch: messages received ahead of free handlers (default: ``min(concurrency, 10)``).
            max_attempts: receives before a failing message is dead-lettered (default: the queue's
                ``max_receives`` when it has a dead-letter queue, else unlimited).
            backoff: delays between attempts (default ``Backoff()``: 1 s doubling to 15 min, jittered).
            visibility_timeout: visibility asked for on receive (default: the queue's); the heartbeat
                keeps extending it while the message is held.
            max_extension: the longest the heartbeat keeps one message invisible (seconds, <= 12 h).
            batch_size: make this a batch handler taking ``list[qfan.Message[T]]`` (1-10 per call).
            receive_wait: long-poll seconds per receive (default: the queue's, else 20). moto's FIFO long
                polls do not notice groups that become free while they wait: use 1-2 s on moto.
        """

        def register(function: F) -> F:
            handler = Handler.inspect(function, batch=batch_size is not None)
            self._add_worker(
                name or handler.name,
                queue,
                handler,
                concurrency,
                prefetch,
                max_attempts=max_attempts,
                backoff=backoff or Backoff(),
                visibility_timeout=visibility_timeout,
                max_extension=max_extension,
                batch_size=batch_size,
                receive_wait=receive_wait,
            )
            return function

        return register

    def _add_worker(
        self,
        name: str,
        queue: Queue[Any] | PriorityQueue[Any],
        handler: Handler,
        concurrency: int,
        prefetch: int | None,
        **options: Any,
    ) -> None:
        worker = Worker(
            name=name,
            queue=queue,
            handler=handler,
            concurrency=concurrency,
            prefetch=min(concurrency, 10) if prefetch is None else prefetch,
            **options,
        )
        if self._queues.get(queue.name) is not queue and self._priority_queues.get(queue.name) is not queue:
            raise ConfigError(f"worker {worker.name}: queue {queue.name!r} is not registered on this app")
        if worker.name in self._workers:
            raise ConfigError(f"a worker named {worker.name!r} is already registered")
        self._workers[worker.name] = worker

    def responder(
        self,
        queue: Queue[Any],
        *,
        name: str | None = None,
        concurrency: int = 10,
        prefetch: int | None = None,
        reply_to: Iterable[str] = (),
        expose_errors: bool = False,
    ) -> Callable[[F], F]:
        """Register the decorated function as a responder: its return value answers each request.

        Requests come from :meth:`request` (or any client that sets the ``ResponseQueueUrl`` and
        ``qfan-correlation-id`` attributes). The reply address is checked before the handler runs: a
        request naming a queue outside the allowed reply queues (see :class:`ReplyAddresses`) is
        dead-lettered with the reason, unhandled, and nothing is sent there. When the handler raises, the
        requester gets a ``qfan.RemoteError`` with the exception's type (and its message only with
        ``expose_errors=True``), the responder logs the exception with the correlation id, and the request
        is deleted; ``qfan.Retry``/``qfan.Reject`` keep their worker meaning. A message without a reply
        address is handled and deleted like any worker's. The function is returned unchanged.

        Args:
            queue: the request queue.
            name: the worker's name (default: the function's).
            concurrency: requests handled at once.
            prefetch: requests held received but not started.
            reply_to: reply queues allowed besides those qfan requesters create (``qfan-reply-*`` on the
                request queue's endpoint and account): name patterns, or full queue URL patterns.
            expose_errors: send the text of a handler's exception to the requester.
        """
        ReplyAddresses(reply_to)  # a bad pattern is a ConfigError here, not when the first request comes

        def register(function: F) -> F:
            responder = Responder(
                queue,
                Handler.inspect(function, batch=False),
                self._connect,
                self._reply_sender,
                reply_to=reply_to,
                expose_errors=expose_errors,
                concurrency=concurrency,
            )
            handler = responder.handler()
            self._add_worker(name or handler.name, queue, handler, concurrency, prefetch)
            return function

        return register

    async def request(
        self,
        queue: Queue[Any],
        value: Any,
        *,
        response_type: type[T] | Any = Any,
        timeout: float = 30.0,  # noqa: ASYNC109 - the request's own deadline, part of the public API
        attributes: Mapping[str, Any] | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> Any:
        """Send ``value`` to a responder's queue and wait for its answer, decoded as ``response_type``.

        Raises ``qfan.RequestTimeout`` when no answer comes within ``timeout`` seconds (a late answer is
        dropped and counted) and ``qfan.RemoteError`` when the responder raised. The reply queue is created
        on the first request and deleted when the app closes.
        """
        if self._services is None:
            raise QfanError(f"app {self.name!r} is not open: use 'async with app:'")
        return await self._replies.request(
            self._connect(),
            self._services,
            queue,
            value,
            response_type=response_type,
            timeout=timeout,
            attributes=attributes,
            group_id=group_id,
            dedup_id=dedup_id,
        )

    @property
    def rpc_stats(self) -> RpcStats:
        """Counters of this app's requests (sent, replied, timed out, remote errors, dropped replies)."""
        return self._replies.stats

    @property
    def reply_queue_url(self) -> str | None:
        """This process's reply queue, once the first request created it."""
        return self._replies.url

    async def sweep_reply_queues(self, idle_seconds: float = 600.0) -> list[str]:
        """Delete reply queues idle for ``idle_seconds`` (left by crashed processes); returns their URLs."""
        return await sweep_reply_queues(self._connect(), idle_seconds, keep=self._replies.url)

    def add_hooks(self, hooks: PipelineHooks) -> PipelineHooks:
        """Register pipeline hooks (see :class:`PipelineHooks`); returns them."""
        self._hooks.add(hooks)
        return hooks

    def middleware(self, function: Middleware) -> Middleware:
        """Register ``async def middleware(message, call_next)`` around every single-message handler."""
        self._middleware.append(function)
        return function

    def on_startup(self, function: Hook) -> Hook:
        """Register a coroutine function run by :meth:`run` before the workers start."""
        self._startup.append(function)
        return function

    def on_shutdown(self, function: Hook) -> Hook:
        """Register a coroutine function run by :meth:`run` after the workers stopped."""
        self._shutdown.append(function)
        return function

    @property
    def workers(self) -> Mapping[str, Worker]:
        """The registered workers, by name."""
        return dict(self._workers)

    def stats(self) -> dict[str, WorkerStats]:
        """Each worker's counters."""
        return {name: worker.stats for name, worker in self._workers.items()}

    async def run(
        self,
        *,
        workers: Iterable[str] | None = None,
        concurrency: int | None = None,
        drain_timeout: float = 30.0,
        stats_interval: float | None = 60.0,
    ) -> None:
        """Run the workers until :meth:`stop` (or cancellation); opens the app if it is not open.

        Args:
            workers: names of the workers to run (default: all).
            concurrency: override every selected worker's concurrency.
            drain_timeout: seconds running handlers get to finish after :meth:`stop`.
            stats_interval: seconds between log lines with each worker's counters (``None``: never).
        """
        chosen = list(self._workers) if workers is None else list(workers)
        unknown = [name for name in chosen if name not in self._workers]
        if unknown or not chosen:
            raise ConfigError(f"no such workers: {unknown}" if unknown else "the app has no workers to run")
        selected = [self._workers[name] for name in chosen]
        if concurrency is not None:
            selected = [dataclasses.replace(w, concurrency=concurrency) for w in selected]
        # A stop() that came before run() got here (a signal during start-up) is honoured, not lost.
        stop = self._stop = self._stop or anyio.Event()
        async with AsyncExitStack() as stack:
            if self._connection is None:
                await stack.enter_async_context(self)
            for hook in self._startup:
                await hook()
            try:
                async with anyio.create_task_group() as tg:
                    if stats_interval:
                        tg.start_soon(self._log_stats, selected, stats_interval, stop)
                    for worker in selected:
                        engine = WorkerEngine(worker, self._middleware, self._hooks)
                        tg.start_soon(engine.run, stop, drain_timeout)
            finally:
                self._stop = None  # the next run() starts afresh
                with anyio.CancelScope(shield=True):
                    for hook in self._shutdown:
                        await hook()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called on the current :meth:`run`."""
        return self._stop is not None and self._stop.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to stop gracefully (stop receiving, release unstarted, drain, return).

        Called before :meth:`run` has started (or while it starts), the coming run stops at once.
        """
        if self._stop is None:
            self._stop = anyio.Event()
        self._stop.set()

    @staticmethod
    async def _log_stats(workers: list[Worker], interval: float, stop: anyio.Event) -> None:
        while not stop.is_set():
            with anyio.move_on_after(interval):
                await stop.wait()
            for worker in workers:
                logger.info("worker %s: %s", worker.name, worker.stats.summary())

    # -- connection -----------------------------------------------------------------------------------

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
            self._connection = await Connection.open(
                self._transport, self.settings, self.retry, self.linger, stack, self._hooks
            )
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if self._services is not None:  # stop the reply loop before its queue goes away
            self._services.cancel_scope.cancel()
            self._services = None
        if self._connection is not None:
            await self._replies.close(self._connection)
        self._connection = None
        if stack is not None:
            await stack.aclose()
