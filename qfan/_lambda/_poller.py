"""A local event source mapping (``qfan lambda run``): poll a queue as Lambda's poller does, call the
handler with the real event shape in a thread as the runtime does, delete exactly what it did not report.

Like Lambda with ``ReportBatchItemFailures``: a handler that raises (or answers something that is not a
partial batch response, or names a message that is not in the batch) fails the whole batch, and nothing
of it is deleted; reported messages are left to come back after their visibility timeout.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from .._exceptions import ConfigError, QfanError
from .._pipeline._connection import Connection
from .._resources._queue import Queue
from .._transport import ReceivedMessage
from ._records import sqs_event

logger = logging.getLogger("qfan")

LambdaFunction = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalContext:
    """The parts of Lambda's context object handlers use, for local invocations.

    Attributes:
        timeout: the function's timeout in seconds (the deadline is counted from creation).
    """

    timeout: float
    function_name: str = "qfan-local"
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the deadline (never negative)."""
        return max(0, int((self.timeout - (time.monotonic() - self._started)) * 1000))


@dataclass
class PollerStats:
    """What a local event source mapping has done.

    Attributes:
        batches: invocations made.
        deleted: messages deleted (not reported).
        reported: messages the handler reported failed.
        failed_batches: invocations that failed as a whole (nothing deleted).
    """

    batches: int = 0
    deleted: int = 0
    reported: int = 0
    failed_batches: int = 0


def reported_ids(response: Any, batch: Sequence[ReceivedMessage]) -> set[str] | None:
    """The message ids a partial batch response reports; ``None`` when it fails the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    known = {message.message_id for message in batch}
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None  # Lambda fails the whole batch for an empty or unknown identifier
        ids.add(identifier)
    return ids


@dataclass
class EventSource:
    """Polls one queue for one Lambda handler.

    Attributes:
        queue: the queue (declared on ``connection``).
        connection: the open connection to receive on.
        function: the Lambda handler.
        batch_size: records per invocation at most (1-10,000; 10 at most on a FIFO queue).
        window: seconds to gather records for a batch (Lambda's ``MaximumBatchingWindowInSeconds``).
        timeout: the function timeout each invocation's context counts down from.
        wait: long-poll seconds per receive.
    """

    queue: Queue[Any]
    connection: Connection
    function: LambdaFunction
    batch_size: int = 10
    window: float = 0.0
    timeout: float = 30.0
    wait: int = 20
    stats: PollerStats = field(default_factory=PollerStats)

    def __post_init__(self) -> None:
        most = 10 if self.queue.fifo else 10_000
        if not 1 <= self.batch_size <= most:
            raise ConfigError(f"batch size must be 1..{most} for queue {self.queue.name!r}")
        if not 0 <= self.window <= 300 or not 0 <= self.wait <= 20 or self.timeout <= 0:
            raise ConfigError("window must be 0..300 s, wait 0..20 s, timeout positive")

    async def run(self, *, until_empty: bool = False) -> PollerStats:
        """Poll and invoke until cancelled, or with ``until_empty`` until a receive finds nothing."""
        while True:
            batch = await self._gather()
            if not batch:
                if until_empty:
                    return self.stats
                continue
            await self.invoke(batch)

    async def _gather(self) -> list[ReceivedMessage]:
        info = await self.queue.declare()
        batch: list[ReceivedMessage] = []
        ends = time.monotonic() + self.window
        while len(batch) < self.batch_size:
            left = ends - time.monotonic()
            wait = self.wait if not batch else max(0, min(20, math.ceil(left)))
            got = await self.connection.sqs.receive(
                info.url,
                max_messages=min(10, self.batch_size - len(batch)),
                wait_seconds=wait,
                visibility_timeout=None,
            )
            batch.extend(got)
            if not got or time.monotonic() >= ends:
                break
        return batch

    async def invoke(self, batch: list[ReceivedMessage]) -> set[str] | None:
        """Invoke the function with one batch, then delete what it did not report; the reported ids."""
        info = await self.queue.declare()
        event = sqs_event(batch, info.arn, info.arn.split(":")[3])
        self.stats.batches += 1
        try:
            response = await anyio.to_thread.run_sync(self.function, event, LocalContext(self.timeout))
        except Exception as exc:
            logger.error(
                "lambda run: the function failed for the whole batch: %s: %s", type(exc).__name__, exc
            )
            self.stats.failed_batches += 1
            return None
        reported = reported_ids(response, batch)
        if reported is None:
            logger.error("lambda run: invalid partial batch response, nothing deleted: %r", response)
            self.stats.failed_batches += 1
            return None
        async with anyio.create_task_group() as tg:
            for message in batch:
                if message.message_id not in reported:
                    tg.start_soon(self._delete, message)
        self.stats.reported += len(reported)
        logger.info("lambda run: %d record(s), %d reported failed", len(batch), len(reported))
        return reported

    async def _delete(self, message: ReceivedMessage) -> None:
        try:
            await self.queue.delete_receipt(message.receipt_handle)
            self.stats.deleted += 1
        except QfanError as exc:  # as on Lambda: it comes back after its visibility timeout
            logger.warning("lambda run: could not delete %s: %s", message.message_id, exc)
