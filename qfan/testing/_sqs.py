"""An in-memory SQS: the data plane and the control plane of one simulated account.

Semantics follow SQS rather than any emulator: visibility timeouts and delays, receive counts and redrive to
a dead-letter queue after ``maxReceiveCount`` receives, FIFO order with one group in flight at a time, the
5-minute deduplication window, long polling, and SQS's error codes (mapped by qfan's own mapping). Time is
read from a clock when needed instead of kept by background tasks: a message's visibility is worked out when
a call looks at it.

Not simulated: retention (messages never expire), ``QueueDeletedRecently`` and ``PurgeQueueInProgress``
(which would only slow tests down), permissions, and encryption (its attributes are only stored).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property

import anyio

from .._transport import (
    BatchResult,
    EntryFailure,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    VisibilityEntry,
    WireAttribute,
    md5_of_attributes,
    md5_of_body,
)
from .._wire._limits import MAX_VISIBILITY
from ._common import aws_error, check_batch_ids, failure, message_size
from ._queue_state import DEDUP_WINDOW, MemoryQueue, StoredMessage
from ._receipts import Receipt, ReceiptSeal
from ._sqs_control import SqsControl
from ._sqs_rules import dedup_id_of, dedup_key, forget_expired, next_change, receivable, send_problem

_BATCH_LIMIT = 1_048_576  # the most one SendMessageBatch may carry in total, whatever the queue's limit


class MemorySqs(SqsControl):
    """SQS in memory: implements both :class:`~qfan._transport.SqsDataPlane` and ``SqsControlPlane``.

    Queue URLs look like ``http://memory.local/123456789012/<name>`` and ARNs like
    ``arn:aws:sqs:us-east-1:123456789012:<name>``. One instance is one account: share it (through one
    :class:`~qfan.testing.MemoryTransport`) between the apps that should see the same queues. Use it from
    one event loop at a time.

    Args:
        account_id: the account in URLs and ARNs.
        region: the region in ARNs.
        clock: monotonic seconds; visibility timeouts, delays and the deduplication window run on it.
    """

    def _batch_on(self, queue_url: str, ids: list[str], operation: str) -> tuple[MemoryQueue, float]:
        """The queue a batch call names, once its entry ids are checked, and the time it is made."""
        queue = self._queue(queue_url, operation)
        check_batch_ids(ids, operation)
        return queue, self._clock()

    @cached_property
    def _seal(self) -> ReceiptSeal:
        """Issues and reads this account's receipt handles."""
        return ReceiptSeal()

    @cached_property
    def _sequence(self) -> Iterator[int]:
        """SQS sequence numbers are 20-digit, ever-increasing strings."""
        return itertools.count(18_000_000_000_000_000_000)

    # -- data plane -----------------------------------------------------------------------------------

    async def send_batch(self, queue_url: str, entries: Sequence[SendEntry]) -> BatchResult[SentMessage]:
        """SendMessageBatch: whole-request errors raise, per-entry ones come back as ``failed``."""
        operation = "SendMessageBatch"
        queue = self._queue(queue_url, operation)
        check_batch_ids([entry.id for entry in entries], operation)
        total = sum(message_size(entry.body, entry.attributes) for entry in entries)
        if total > _BATCH_LIMIT:
            raise aws_error(
                "AWS.SimpleQueueService.BatchRequestTooLong",
                f"Batch requests cannot be longer than {_BATCH_LIMIT} bytes. You have sent {total} bytes.",
                operation,
            )
        succeeded: list[SentMessage] = []
        failed: list[EntryFailure] = []
        for entry in entries:
            problem = send_problem(queue, entry)
            if problem is not None:
                failed.append(failure(entry.id, *problem))
                continue
            message_id, sequence = self._enqueue(
                queue, entry.body, entry.attributes, entry.delay_seconds, entry.group_id, entry.dedup_id
            )
            header = entry.system_attributes.get("AWSTraceHeader")
            if header is not None and message_id in queue.messages:
                queue.messages[message_id].trace_header = header.string_value
            succeeded.append(
                SentMessage(
                    id=entry.id,
                    message_id=message_id,
                    md5_of_body=md5_of_body(entry.body),
                    md5_of_attributes=md5_of_attributes(entry.attributes),
                    sequence_number=sequence,
                )
            )
        queue.wake()
        return BatchResult(succeeded=succeeded, failed=failed)

    def deliver(
        self,
        queue_arn: str,
        body: str,
        attributes: Mapping[str, WireAttribute],
        *,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> str | None:
        """Enqueue one message the way another AWS service (SNS) does: the message id, or ``None`` when the
        queue does not exist or refuses the message."""
        queue = self._by_arn(queue_arn)
        entry = SendEntry("delivery", body, dict(attributes), group_id=group_id, dedup_id=dedup_id)
        if queue is None or send_problem(queue, entry) is not None:
            return None
        message_id, _ = self._enqueue(queue, body, attributes, None, group_id, dedup_id)
        queue.wake()
        return message_id

    def _enqueue(
        self,
        queue: MemoryQueue,
        body: str,
        attributes: Mapping[str, WireAttribute],
        delay: int | None,
        group_id: str | None,
        dedup_id: str | None,
    ) -> tuple[str, str | None]:
        now = self._clock()
        sequence: str | None = None
        if queue.fifo:
            forget_expired(queue, now)
            dedup_id = dedup_id_of(queue, body, dedup_id)
            key = dedup_key(queue, group_id, dedup_id)
            if key in queue.dedup:
                # Accepted, not enqueued: SQS answers with the first message's id.
                _, known_id, known_sequence = queue.dedup[key]
                return known_id, known_sequence
            sequence = f"{next(self._sequence):020d}"
        message_id = str(uuid.uuid4())
        queue.messages[message_id] = StoredMessage(
            message_id=message_id,
            body=body,
            attributes=dict(attributes),
            md5_of_body=md5_of_body(body),
            md5_of_attributes=md5_of_attributes(attributes),
            sent_ms=int(time.time() * 1000),
            visible_at=now + (queue.number("DelaySeconds") if delay is None else delay),
            group_id=group_id,
            dedup_id=dedup_id if queue.fifo else None,
            sequence_number=sequence,
        )
        if queue.fifo and dedup_id is not None and sequence is not None:
            queue.dedup[dedup_key(queue, group_id, dedup_id)] = (now + DEDUP_WINDOW, message_id, sequence)
        return message_id, sequence

    async def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None
    ) -> list[ReceivedMessage]:
        """ReceiveMessage; a long poll waits until a message can be taken or ``wait_seconds`` pass."""
        operation = "ReceiveMessage"
        queue = self._queue(queue_url, operation)
        for name, value, low, high in (
            ("MaxNumberOfMessages", max_messages, 1, 10),
            ("WaitTimeSeconds", wait_seconds, 0, 20),
            ("VisibilityTimeout", visibility_timeout, 0, MAX_VISIBILITY),
        ):
            if value is not None and not low <= value <= high:
                raise aws_error(
                    "InvalidParameterValue",
                    f"Value {value} for parameter {name} is invalid. "
                    f"Reason: Must be between {low} and {high}.",
                    operation,
                )
        deadline = self._clock() + wait_seconds
        while True:
            now = self._clock()
            taken = self._take(queue, max_messages, visibility_timeout, now)
            if taken or now >= deadline:
                return taken
            wake_at = next_change(queue, now)
            waiter = anyio.Event()
            queue.waiters.add(waiter)
            with anyio.move_on_after(min(deadline, wake_at or deadline) - now):
                await waiter.wait()
            queue.waiters.discard(waiter)
            queue = self._queue(queue_url, operation)  # it may have been deleted meanwhile

    def _take(
        self, queue: MemoryQueue, limit: int, visibility_timeout: int | None, now: float
    ) -> list[ReceivedMessage]:
        timeout = queue.number("VisibilityTimeout") if visibility_timeout is None else visibility_timeout
        redrive = queue.redrive()
        taken: list[ReceivedMessage] = []
        for message in receivable(queue, now):
            if len(taken) == limit:
                break
            if redrive is not None and message.receive_count >= redrive[1]:
                # One more receive would exceed maxReceiveCount: SQS moves it instead of delivering it.
                target = self._by_arn(redrive[0])
                if target is not None:
                    self.move(queue, message, target, now, origin=queue.arn)
                    continue
            message.receive_count += 1
            message.delivery += 1
            message.received_at = now
            if message.first_received_ms is None:
                message.first_received_ms = int(time.time() * 1000)
            message.visible_at = now + timeout
            taken.append(self._received(queue, message))
        return taken

    def _received(self, queue: MemoryQueue, message: StoredMessage) -> ReceivedMessage:
        system = {
            "SenderId": self.account_id,
            "SentTimestamp": str(message.sent_ms),
            "ApproximateReceiveCount": str(message.receive_count),
            "ApproximateFirstReceiveTimestamp": str(message.first_received_ms),
        }
        if message.group_id is not None:
            system["MessageGroupId"] = message.group_id
        if message.dedup_id is not None:
            system["MessageDeduplicationId"] = message.dedup_id
        if message.sequence_number is not None:
            system["SequenceNumber"] = message.sequence_number
        if message.trace_header is not None:
            system["AWSTraceHeader"] = message.trace_header
        handle = self._seal.issue(Receipt(queue.url, message.message_id, message.delivery))
        return ReceivedMessage(
            message_id=message.message_id,
            receipt_handle=handle,
            body=message.body,
            attributes=dict(message.attributes),
            system_attributes=system,
            md5_of_body=message.md5_of_body,
            md5_of_attributes=message.md5_of_attributes,
        )

    async def delete_batch(self, queue_url: str, entries: Sequence[ReceiptEntry]) -> BatchResult[str]:
        """DeleteMessageBatch. Deleting an already deleted message succeeds, as on SQS; on a FIFO queue a
        handle whose visibility timeout ended (or that a later receive replaced) has expired."""
        queue, now = self._batch_on(queue_url, [entry.id for entry in entries], "DeleteMessageBatch")
        succeeded: list[str] = []
        failed: list[EntryFailure] = []
        for entry in entries:
            receipt = self._seal.read(entry.receipt_handle)
            if receipt is None or receipt.queue_url != queue.url:
                failed.append(_invalid_handle(entry.id, entry.receipt_handle))
                continue
            message = queue.messages.get(receipt.message_id)
            if message is not None and queue.fifo and not _current(message, receipt, now):
                failed.append(failure(entry.id, "ReceiptHandleIsInvalid", "The receipt handle has expired."))
                continue
            if message is not None:
                del queue.messages[message.message_id]
            succeeded.append(entry.id)
        queue.wake()  # a FIFO group may be free again
        return BatchResult(succeeded=succeeded, failed=failed)

    async def change_visibility_batch(
        self, queue_url: str, entries: Sequence[VisibilityEntry]
    ) -> BatchResult[str]:
        """ChangeMessageVisibilityBatch: the new timeout counts from now, for messages in flight only."""
        queue, now = self._batch_on(
            queue_url, [entry.id for entry in entries], "ChangeMessageVisibilityBatch"
        )
        succeeded: list[str] = []
        failed: list[EntryFailure] = []
        for entry in entries:
            problem = self._visibility_problem(queue, entry, now)
            if problem is not None:
                failed.append(problem)
                continue
            receipt = self._seal.read(entry.receipt_handle)
            assert receipt is not None  # checked by _visibility_problem
            queue.messages[receipt.message_id].visible_at = now + entry.visibility_timeout
            succeeded.append(entry.id)
        queue.wake()
        return BatchResult(succeeded=succeeded, failed=failed)

    def _visibility_problem(
        self, queue: MemoryQueue, entry: VisibilityEntry, now: float
    ) -> EntryFailure | None:
        receipt = self._seal.read(entry.receipt_handle)
        if receipt is None or receipt.queue_url != queue.url:
            return failure(entry.id, "ReceiptHandleIsInvalid", "The input receipt handle is invalid.")
        timeout = entry.visibility_timeout
        if not 0 <= timeout <= MAX_VISIBILITY:
            return failure(
                entry.id,
                "InvalidParameterValue",
                f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and "
                f"{MAX_VISIBILITY}.",
            )
        message = queue.messages.get(receipt.message_id)
        if message is None or message.delivery != receipt.delivery:
            return failure(entry.id, "ReceiptHandleIsInvalid", "The receipt handle has expired.")
        if not message.in_flight(now):
            return failure(
                entry.id,
                "MessageNotInflight",
                "Message does not exist or is not available for visibility timeout change.",
            )
        if now + timeout > message.received_at + MAX_VISIBILITY:
            return failure(
                entry.id,
                "InvalidParameterValue",
                f"Total VisibilityTimeout for the message is beyond the limit [{MAX_VISIBILITY} seconds]",
            )
        return None


def _current(message: StoredMessage, receipt: Receipt, now: float) -> bool:
    return message.delivery == receipt.delivery and message.in_flight(now)


def _invalid_handle(entry_id: str, handle: str) -> EntryFailure:
    return failure(
        entry_id,
        "ReceiptHandleIsInvalid",
        f'The input receipt handle "{handle}" is not a valid receipt handle.',
    )
