"""The control half of the in-memory SQS: the account's queues, their attributes and tags, and moving
messages between queues (redrive to a dead-letter queue, and message move tasks back out of one).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping

from .._transport import MoveTask
from ._common import ACCOUNT_ID, REGION, aws_error
from ._queue_state import (
    MemoryQueue,
    StoredMessage,
    check_name,
    initial_attributes,
    redrive_policy,
    same_value,
    validate,
)

NOT_FOUND = "AWS.SimpleQueueService.NonExistentQueue"
# Attributes whose empty value removes them rather than storing "".
_REMOVABLE = frozenset({"Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId"})


class SqsControl:
    """The account's queues and the SQS control plane calls (``SqsControlPlane``).

    Args:
        account_id: the account in URLs and ARNs.
        region: the region in ARNs.
        clock: monotonic seconds; visibility timeouts, delays and the deduplication window run on it.
    """

    def __init__(
        self,
        *,
        account_id: str = ACCOUNT_ID,
        region: str = REGION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self._clock = clock
        self._queues: dict[str, MemoryQueue] = {}  # by URL, in creation order
        self._move_tasks: dict[str, list[MoveTask]] = {}  # by source ARN, most recent first

    def now(self) -> float:
        """The current time on the clock visibility, delays and deduplication windows run on."""
        return self._clock()

    # -- addressing -----------------------------------------------------------------------------------

    def url_of(self, name: str) -> str:
        """The URL a queue called ``name`` has (whether or not it exists)."""
        return f"http://memory.local/{self.account_id}/{name}"

    def arn_of(self, name: str) -> str:
        """The ARN a queue called ``name`` has (whether or not it exists)."""
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def _queue(self, url: str, operation: str) -> MemoryQueue:
        queue = self._queues.get(url)
        if queue is None:
            raise aws_error(NOT_FOUND, "The specified queue does not exist.", operation)
        return queue

    def _by_arn(self, arn: str) -> MemoryQueue | None:
        name = arn.rpartition(":")[2]
        if arn != self.arn_of(name):
            return None
        return self._queues.get(self.url_of(name))

    # -- control plane --------------------------------------------------------------------------------

    async def get_queue_url(self, name: str) -> str:
        """GetQueueUrl."""
        return self._queue(self.url_of(name), "GetQueueUrl").url

    async def create_queue(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        """CreateQueue: idempotent for the same attributes; a different value of one given attribute is
        ``QueueAlreadyExists`` (qfan's ``QueueNameExists``), as on SQS."""
        operation = "CreateQueue"
        given = dict(attributes)
        check_name(name, given)
        fifo = given.get("FifoQueue", "false").lower() == "true"
        stored = self._with_redrive(
            validate(given, fifo=fifo, operation=operation, creating=True), fifo, operation
        )
        existing = self._queues.get(self.url_of(name))
        if existing is not None:
            for attribute, value in stored.items():
                if not same_value(attribute, value, existing.attributes.get(attribute, "")):
                    raise aws_error(
                        "QueueAlreadyExists",
                        "A queue already exists with the same name and a different value for attribute "
                        f"{attribute}",
                        operation,
                    )
            return existing.url
        now = int(time.time())
        merged = {k: v for k, v in initial_attributes(name, stored).items() if v != ""}
        queue = MemoryQueue(name, self.arn_of(name), merged, dict(tags), self.url_of(name), now, now)
        self._queues[queue.url] = queue
        return queue.url

    async def get_queue_attributes(self, queue_url: str) -> dict[str, str]:
        """GetQueueAttributes with ``All``: the stored attributes plus ARN, timestamps and counts."""
        queue = self._queue(queue_url, "GetQueueAttributes")
        now = self._clock()
        messages = list(queue.messages.values())
        return {
            "QueueArn": queue.arn,
            "CreatedTimestamp": str(queue.created),
            "LastModifiedTimestamp": str(queue.modified),
            "ApproximateNumberOfMessages": str(sum(m.visible_at <= now for m in messages)),
            "ApproximateNumberOfMessagesNotVisible": str(sum(m.in_flight(now) for m in messages)),
            "ApproximateNumberOfMessagesDelayed": str(sum(m.delayed(now) for m in messages)),
            **queue.attributes,
        }

    async def set_queue_attributes(self, queue_url: str, attributes: Mapping[str, str]) -> None:
        """SetQueueAttributes; an empty policy (``Policy``, ``RedrivePolicy``…) removes it."""
        operation = "SetQueueAttributes"
        queue = self._queue(queue_url, operation)
        stored = validate(dict(attributes), fifo=queue.fifo, operation=operation, creating=False)
        stored = self._with_redrive(stored, queue.fifo, operation)
        if stored.get("KmsMasterKeyId"):
            stored.setdefault("SqsManagedSseEnabled", "false")
            queue.attributes.setdefault("KmsDataKeyReusePeriodSeconds", "300")
        for name, value in stored.items():
            if value == "" and name in _REMOVABLE:
                queue.attributes.pop(name, None)
            else:
                queue.attributes[name] = value
        queue.modified = int(time.time())
        queue.wake()  # a shorter delay may make messages receivable earlier

    async def list_queue_tags(self, queue_url: str) -> dict[str, str]:
        """ListQueueTags."""
        return dict(self._queue(queue_url, "ListQueueTags").tags)

    async def tag_queue(self, queue_url: str, tags: Mapping[str, str]) -> None:
        """TagQueue: adds or replaces the given tags."""
        self._queue(queue_url, "TagQueue").tags.update(tags)

    async def delete_queue(self, queue_url: str) -> None:
        """DeleteQueue; long polls waiting on it return with ``QueueNotFound``."""
        self._queue(queue_url, "DeleteQueue")
        self._queues.pop(queue_url).wake()

    async def purge_queue(self, queue_url: str) -> None:
        """PurgeQueue: every message goes, in flight or not (deduplication ids stay, as on SQS)."""
        self._queue(queue_url, "PurgeQueue").messages.clear()

    async def list_queues(self, prefix: str) -> list[str]:
        """ListQueues: the URLs of the queues whose name starts with ``prefix`` (at most 1000)."""
        return [q.url for q in self._queues.values() if q.name.startswith(prefix)][:1000]

    async def list_dead_letter_source_queues(self, queue_url: str) -> list[str]:
        """ListDeadLetterSourceQueues: the queues whose redrive policy targets this one."""
        target = self._queue(queue_url, "ListDeadLetterSourceQueues")
        return [q.url for q in self._queues.values() if (q.redrive() or ("",))[0] == target.arn]

    async def start_message_move_task(self, source_arn: str, destination_arn: str | None) -> str:
        """StartMessageMoveTask, carried out at once; returns a task handle.

        The source must be some queue's dead-letter queue. Without a destination each message goes back to
        the queue SQS dead-lettered it from; like SQS's task, the move stops at a message SQS did not
        dead-letter (one sent to the dead-letter queue directly). Messages in flight stay where they are.
        """
        operation = "StartMessageMoveTask"
        source = self._by_arn(source_arn)
        destination = None if destination_arn is None else self._by_arn(destination_arn)
        if source is None or (destination_arn is not None and destination is None):
            raise aws_error(
                "ResourceNotFoundException", "The resource that you specified does not exist.", operation
            )
        if not any((q.redrive() or ("",))[0] == source.arn for q in self._queues.values()):
            raise aws_error(
                "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.", operation
            )
        now = self._clock()
        waiting = [m for m in source.messages.values() if not m.in_flight(now)]
        moved, failure = 0, None
        for message in waiting:
            target = destination or (self._by_arn(message.origin_arn) if message.origin_arn else None)
            if target is None:
                failure = "CouldNotDetermineMessageSource"
                break
            message.receive_count = 0  # a fresh start on the queue it goes back to
            self.move(source, message, target, now, origin=None)
            moved += 1
        task = {"taskId": str(uuid.uuid4()), "sourceArn": source.arn}
        handle = base64.b64encode(json.dumps(task).encode()).decode()
        record = MoveTask(
            "FAILED" if failure else "COMPLETED",
            handle,
            moved,
            len(waiting),
            failure,
            int(time.time() * 1000),
        )
        self._move_tasks.setdefault(source.arn, []).insert(0, record)
        return handle

    async def list_message_move_tasks(self, source_arn: str) -> list[MoveTask]:
        """ListMessageMoveTasks: the source's tasks, most recent first (they all ended when started)."""
        if self._by_arn(source_arn) is None:
            raise aws_error(
                "ResourceNotFoundException",
                "The resource that you specified does not exist.",
                "ListMessageMoveTasks",
            )
        return self._move_tasks.get(source_arn, [])[:10]

    # -- shared with the data plane -------------------------------------------------------------------

    def move(
        self, source: MemoryQueue, message: StoredMessage, target: MemoryQueue, now: float, origin: str | None
    ) -> None:
        """Move a message between queues as SQS does: same id, body and receive count, visible at once."""
        del source.messages[message.message_id]
        message.visible_at = now
        message.origin_arn = origin
        target.messages[message.message_id] = message
        target.wake()

    def _with_redrive(self, stored: dict[str, str], fifo: bool, operation: str) -> dict[str, str]:
        """``RedrivePolicy`` checked against the queues that exist, and spelled as SQS spells it."""
        policy = redrive_policy(stored.get("RedrivePolicy", ""), operation)
        if policy is None:
            return stored
        target = self._by_arn(policy[0])
        if target is None or target.fifo != fifo:
            reason = (
                "Dead letter target does not exist" if target is None else "must be the same type of queue"
            )
            raise aws_error(
                "InvalidParameterValue",
                f"Value {stored['RedrivePolicy']} for parameter RedrivePolicy is invalid. Reason: {reason}.",
                operation,
            )
        stored["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": policy[0], "maxReceiveCount": policy[1]}, separators=(",", ":")
        )
        return stored
