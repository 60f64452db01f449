"""The App's registry of queues, priority queues, topics and subscriptions; declaring and planning them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, Unpack, overload

import anyio
import anyio.abc

from .._exceptions import ConfigError, QfanError
from .._pipeline._connection import Connection
from .._pipeline._offload import Offload
from .._resources._levels import Mode
from .._resources._priority import PriorityQueue, check_levels, level_queue_name
from .._resources._queue import Queue
from .._resources._queue_options import QueueOptions, QueueSettings
from .._resources._subscription import FilterScope, Subscription
from .._resources._topic import ThroughputScope, Topic, TopicOptions
from .._resources._topology import PlanItem, plan
from .._wire._codec import Format

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class QueueArgs(QueueSettings, total=False):
    """The keyword options of :meth:`App.queue`: :class:`QueueSettings` plus ``dead_letter``, ``offload``
    and ``format``."""

    dead_letter: Queue[Any] | None
    offload: Offload | None
    format: Format


class PriorityArgs(QueueArgs, total=False):
    """The keyword options of :meth:`App.priority_queue` besides ``levels``."""

    mode: Mode
    reserved: Mapping[str, int] | None
    default: str | None


class TopologyRegistry:
    """What an App declares: registered once, declared idempotently when the app opens (or on first use)."""

    name: str
    _queues: dict[str, Queue[Any]]
    _priority_queues: dict[str, PriorityQueue[Any]]
    _topics: dict[str, Topic[Any]]
    _subscriptions: list[Subscription]

    def _connect(self) -> Connection:
        raise NotImplementedError  # the App's

    # -- topology -------------------------------------------------------------------------------------

    @overload
    def queue(self, name: str, type: type[T], **options: Unpack[QueueArgs]) -> Queue[T]: ...
    @overload
    def queue(self, name: str, **options: Unpack[QueueArgs]) -> Queue[Any]: ...

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
        self, name: str, type: type[T], *, levels: Mapping[str, float], **options: Unpack[PriorityArgs]
    ) -> PriorityQueue[T]: ...
    @overload
    def priority_queue(
        self, name: str, *, levels: Mapping[str, float], **options: Unpack[PriorityArgs]
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
