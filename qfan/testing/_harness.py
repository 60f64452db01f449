"""A test harness for workers: deliver one message, wait until its worker settled it, say what happened.

``Harness(app)`` runs the app's workers in the background; ``await harness.deliver(queue, value)`` sends
``value``, waits for the worker consuming ``queue`` to settle that very message (matched by message id
through :class:`~qfan.PipelineHooks`), and returns a :class:`Delivery`. Meant for ``MemoryTransport`` apps
(no emulator, no network), it works with any transport.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Unpack, cast

import anyio

from .._app._app import App
from .._exceptions import ConfigError, MessageError, QfanError
from .._pipeline._hooks import CallNext, PipelineHooks
from .._pipeline._message import Message
from .._resources._priority import PriorityQueue
from .._resources._queue import Queue
from .._transport import SendEntry
from .._wire._attributes import AttributeValue, encode_attributes
from .._worker._settle import Action, DeadLetter, Delete, Release, RetryAfter, Settled
from .._worker._worker import Worker

Outcome = Literal["acked", "retried", "dead_lettered", "released"]
_POLL = 0.005  # seconds between looks at what hooks cannot announce (an ack or a nack carried out)


class DeliverOptions(TypedDict, total=False):
    """The keyword options of :meth:`Harness.deliver_raw` (as for :meth:`Harness.deliver`)."""

    priority: str | None
    attributes: Mapping[str, AttributeValue] | None
    group_id: str | None
    dedup_id: str | None
    timeout: float


class _OutcomeIs:
    """A read-only ``bool`` attribute of a :class:`Delivery`: whether its outcome is this one."""

    def __init__(self, outcome: Outcome) -> None:
        self._outcome = outcome

    def __get__(self, delivery: Delivery | None, owner: type[Delivery]) -> bool:
        if delivery is None:
            raise AttributeError(self._outcome)
        return delivery.outcome == self._outcome


@dataclass(frozen=True)
class Delivery:
    """What a worker did with one delivered message.

    Attributes:
        outcome: ``"acked"`` (deleted as handled), ``"retried"`` (made visible again later),
            ``"dead_lettered"`` (copied to the dead-letter queue, then deleted) or ``"released"`` (given
            back unstarted: the worker was stopping, or an earlier message of its FIFO group failed).
        message: the received message.
        retry_after: for ``retried``: seconds until the message is visible again.
        reason: for ``dead_lettered``: the ``dead-letter-reason`` (``"rejected: ..."``,
            ``"poison message: ..."``, ``"failed 3 times: ..."``); for a ``retried`` message that should
            have been dead-lettered but its queue has no dead-letter queue (``undeliverable``): that reason.
        error: the exception the handler raised (``qfan.Retry`` and ``qfan.Reject`` included), or the one
            its body raised for a poison message; ``None`` when the handler returned.
        undeliverable: retried only because the queue has no dead-letter queue to copy it to.
    """

    outcome: Outcome
    message: Message[Any] = field(repr=False)
    retry_after: int | None = None
    reason: str | None = None
    error: BaseException | None = None
    undeliverable: bool = False

    acked = _OutcomeIs("acked")
    """Whether the message was deleted as handled."""
    retried = _OutcomeIs("retried")
    """Whether the message was given back for a later attempt."""
    dead_lettered = _OutcomeIs("dead_lettered")
    """Whether the message went to the dead-letter queue."""
    released = _OutcomeIs("released")
    """Whether the message was given back unstarted."""


@dataclass
class _Settle:
    """One settle decision seen by the hooks, and how to tell that the worker has carried it out."""

    order: int
    delivery: Delivery
    done: Callable[[], bool]


class _Observer(PipelineHooks):
    """The hooks a harness registers on its app (once per app), reporting to the harness running it."""

    def __init__(self) -> None:
        self.harness: Harness | None = None

    def after_receive(self, message: Message[Any]) -> None:
        if self.harness is not None:
            self.harness._received.add(message.message_id)
            self.harness._wake()

    async def around_handler(self, message: Message[Any], call_next: CallNext) -> Any:
        harness = self.harness
        if harness is None:
            return await call_next()
        key = message.message_id
        harness._running[key] = harness._running.get(key, 0) + 1
        harness._errors.pop(key, None)
        harness._wake()
        try:
            return await call_next()
        except BaseException as exc:
            harness._errors[key] = exc
            raise
        finally:
            harness._running[key] -= 1
            harness._wake()

    def after_settle(self, message: Message[Any], action: Action) -> None:
        if self.harness is not None:
            self.harness._settled(message, action)


_observers: weakref.WeakKeyDictionary[App, _Observer] = weakref.WeakKeyDictionary()


class Harness:
    """Runs an app's workers in the background and reports what they do with each delivered message.

    Use it as an async context manager: entering opens the app (unless it is open already) and starts
    ``app.run()`` in the background; leaving stops the workers gracefully (as :meth:`qfan.App.stop` does),
    then closes the app if the harness opened it. An exception the workers died of is raised on leaving.

    Example::

        async with Harness(app) as harness:
            result = await harness.deliver(orders, Order(1, "pen"))
        assert result.acked

    Args:
        app: the app whose workers to run.
        workers: names of the workers to run (default: all of them).
        drain_timeout: seconds running handlers get to finish when the harness stops.
    """

    def __init__(self, app: App, *, workers: Iterable[str] | None = None, drain_timeout: float = 5.0) -> None:
        self.app = app
        self._names = None if workers is None else list(workers)
        self._drain_timeout = drain_timeout
        self._workers: list[Worker] = []
        self._stack: AsyncExitStack | None = None
        self._changed = anyio.Event()
        self._order = 0
        self._received: set[str] = set()
        self._running: dict[str, int] = {}
        self._errors: dict[str, BaseException] = {}
        self._settles: dict[str, list[_Settle]] = {}
        self._history: list[Delivery] = []
        self._failure: BaseException | None = None
        self._stopped = False

    @property
    def deliveries(self) -> list[Delivery]:
        """Every settle the workers made while the harness ran, in order (redeliveries included)."""
        return list(self._history)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> Harness:
        if self._stack is not None:
            raise QfanError("this harness is already running")
        app = self.app
        names = list(app.workers) if self._names is None else self._names
        unknown = [name for name in names if name not in app.workers]
        if unknown:
            raise ConfigError(f"no such workers on app {app.name!r}: {unknown}")
        observer = _observers.get(app)
        if observer is None:
            observer = _observers[app] = cast("_Observer", app.add_hooks(_Observer()))
        if observer.harness is not None:
            raise QfanError(f"app {app.name!r} already runs under another Harness")
        self._workers = [app.workers[name] for name in names]
        self._stopped = False
        self._failure = None
        stack = AsyncExitStack()
        try:
            if not app.is_open:  # open it here, so that deliver() can send before run() starts
                await stack.enter_async_context(cast("AbstractAsyncContextManager[Any]", app))
            observer.harness = self
            stack.callback(setattr, observer, "harness", None)
            if names:
                tg = await stack.enter_async_context(anyio.create_task_group())
                tg.start_soon(self._run, names)
                stack.callback(app.stop)  # first thing on the way out: stop, then the group waits for run()
        except BaseException:
            await _close_shielded(stack)
            raise
        self._stack = stack
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        if self._failure is not None and exc is None:
            raise self._failure

    async def _run(self, names: list[str]) -> None:
        try:
            await self.app.run(workers=names, drain_timeout=self._drain_timeout, stats_interval=None)
        except Exception as exc:
            self._failure = exc
        finally:
            self._stopped = True
            self._wake()

    # -- delivering -----------------------------------------------------------------------------------

    async def deliver(
        self,
        queue: Queue[Any] | PriorityQueue[Any],
        value: Any,
        *,
        priority: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the wait for the settle, not a cancellation scope
    ) -> Delivery:
        """Send ``value`` to ``queue`` and wait until the worker consuming it settled that message.

        A retried message is reported as soon as the worker has given it back: the redelivery is not
        waited for (see :attr:`deliveries` for later attempts).

        Args:
            queue: a queue (or a priority queue, or one of its levels) a running worker consumes.
            value: the body, encoded as ``queue.send`` encodes it.
            priority: the level of a priority queue (default: its ``default`` level).
            attributes: message attributes.
            group_id: the FIFO message group.
            dedup_id: the FIFO deduplication id.
            timeout: seconds to wait for the settle.

        Raises:
            ConfigError: no running worker consumes ``queue``, or ``priority`` was given for a plain queue.
            TimeoutError: the message was not settled in time (the message says how far it got).
        """
        worker = self._consumer(queue, priority)
        order = self._order
        if isinstance(queue, PriorityQueue):
            message_id = await queue.send(
                value, priority=priority, attributes=attributes, group_id=group_id, dedup_id=dedup_id
            )
        else:
            message_id = await queue.send(value, attributes=attributes, group_id=group_id, dedup_id=dedup_id)
        return await self._outcome(message_id, order, worker, queue, timeout)

    async def deliver_raw(
        self, queue: Queue[Any] | PriorityQueue[Any], body: str, **options: Unpack[DeliverOptions]
    ) -> Delivery:
        """Like :meth:`deliver`, but ``body`` goes on the queue exactly as given, as a foreign producer
        would send it (no encoding, no content type): for poison-message tests.

        Sent with one ``SendMessageBatch`` call on the app's open connection (retried like any call), without
        qfan's outbound pipeline (no hooks, no size checks, no offloading).
        """
        priority = options.get("priority")
        worker = self._consumer(queue, priority)
        level = queue.level(priority) if isinstance(queue, PriorityQueue) else queue
        url = (await level.declare()).url
        attributes = encode_attributes(options.get("attributes"))
        entry = SendEntry(
            "0", body, attributes, group_id=options.get("group_id"), dedup_id=options.get("dedup_id")
        )
        order = self._order
        sent, errors = await self.app.connection.sqs.send_batch(url, [entry])
        if errors:
            raise errors["0"]
        return await self._outcome(sent[0].message_id, order, worker, queue, options.get("timeout", 5.0))

    def _consumer(self, queue: Queue[Any] | PriorityQueue[Any], priority: str | None) -> Worker:
        if self._stack is None:
            raise QfanError("the harness is not running: use 'async with Harness(app) as harness:'")
        if priority is not None and not isinstance(queue, PriorityQueue):
            raise ConfigError(f"priority= is for priority queues; {queue!r} is a plain queue")
        for worker in self._workers:
            consumed = worker.queue.consumed_levels().queues.values()
            if worker.queue is queue or any(level is queue for level in consumed):
                return worker
        running = [worker.name for worker in self._workers]
        raise ConfigError(f"no running worker consumes {queue!r} (workers running: {running})")

    async def _outcome(
        self,
        message_id: str,
        order: int,
        worker: Worker,
        queue: Queue[Any] | PriorityQueue[Any],
        timeout: float,  # noqa: ASYNC109 - see deliver()
    ) -> Delivery:
        """The first settle of ``message_id`` after ``order``, once carried out; or why there is none."""

        deadline = anyio.current_time() + timeout
        while True:
            settle = next((s for s in self._settles.get(message_id, ()) if s.order > order), None)
            if settle is not None and settle.done():
                return settle.delivery
            if self._failure is not None:
                raise QfanError(f"the app's workers failed: {self._failure!r}") from self._failure
            if self._stopped:
                raise QfanError(f"the app's workers stopped before message {message_id} was settled")
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise TimeoutError(self._late(message_id, settle, worker, queue, timeout))
            with anyio.move_on_after(min(remaining, _POLL if settle is not None else remaining)):
                await self._changed.wait()

    def _late(
        self,
        message_id: str,
        settle: _Settle | None,
        worker: Worker,
        queue: Queue[Any] | PriorityQueue[Any],
        timeout: float,
    ) -> str:
        where = f"message {message_id} on {queue!r} (worker {worker.name!r})"
        if settle is not None:
            return (
                f"{where}: the worker decided {settle.delivery.outcome!r} but had not carried it out after "
                f"{timeout:g} s (a failed ack or dead-letter copy is logged by the 'qfan' logger)"
            )
        if self._running.get(message_id):
            return f"{where}: its handler is still running after {timeout:g} s"
        if message_id in self._received:
            return f"{where}: received, but not settled after {timeout:g} s (waiting for a handler slot?)"
        fifo = " (an earlier message of its group still in flight? deduplicated?)" if queue.fifo else ""
        return f"{where}: not received within {timeout:g} s{fifo}"

    # -- what the hooks report ------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _settled(self, message: Message[Any], action: Action) -> None:
        self._order += 1
        delivery, done = self._describe(message, action)
        self._settles.setdefault(message.message_id, []).append(_Settle(self._order, delivery, done))
        self._history.append(delivery)
        self._wake()

    def _describe(self, message: Message[Any], action: Action) -> tuple[Delivery, Callable[[], bool]]:
        error = self._errors.pop(message.message_id, None)
        if error is None:
            try:
                _ = message.body
            except MessageError as exc:  # poison: the handler never ran
                error = exc
        if isinstance(action, Settled | Delete):
            return Delivery("acked", message, error=error), lambda: message.settled
        if isinstance(action, DeadLetter):
            delivery = Delivery("dead_lettered", message, reason=action.reason, error=action.error)
            return delivery, lambda: message.settled
        stats = next((w.stats for w in self._workers if _consumes(w, message.queue)), None)
        if isinstance(action, RetryAfter):
            delivery = Delivery(
                "retried",
                message,
                retry_after=action.delay,
                reason=action.reason or None,
                error=error,
                undeliverable=action.undeliverable,
            )
            retried = stats.retried if stats is not None else 0
            return delivery, lambda: stats is None or stats.retried > retried
        assert isinstance(action, Release), action
        released = stats.released if stats is not None else 0
        return Delivery("released", message, error=error), lambda: stats is None or stats.released > released


def _consumes(worker: Worker, queue_name: str) -> bool:
    return any(level.name == queue_name for level in worker.queue.consumed_levels().queues.values())


async def _close_shielded(stack: AsyncExitStack) -> None:
    with anyio.CancelScope(shield=True):
        await stack.aclose()
