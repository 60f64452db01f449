"""boto3, the way most code uses SQS: ``naive`` makes one call per message, ``batched`` uses the 10-entry
batch calls from a single thread. Sync, so end-to-end runs the publisher in a second thread."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from ..common import Job, Meter, NotAvailable, Outcome, body_text

UNAVAILABLE = {
    "rpc": "boto3 has no request/response; see the aiobotocore row for a hand-written one",
    "offload_boto3_naive": "one row of inline baseline is enough (boto3-batched); boto3 has no S3 offload",
}
_IDLE = 10.0  # seconds without a message before a consumer gives up (a lost message ends the run)
OFFLOAD_BATCH_BYTES = 1024 * 1024  # SendMessageBatch's total limit


def _client(job: Job, service: str = "sqs") -> Any:
    import boto3

    return boto3.client(service, region_name=job.region, endpoint_url=job.endpoint_url)


def _batches(job: Job, start: int = 0, stop: int | None = None, size: int = 10) -> list[list[dict[str, str]]]:
    stop = job.messages if stop is None else stop
    entries = [{"Id": str(i % size), "MessageBody": body_text(i, job.body_bytes)} for i in range(start, stop)]
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def _send_naive(sqs: Any, job: Job) -> None:
    for i in range(job.messages):
        sqs.send_message(QueueUrl=job.queue_url, MessageBody=body_text(i, job.body_bytes))


def _send_batched(sqs: Any, job: Job) -> None:
    for batch in _batches(job):
        response = sqs.send_message_batch(QueueUrl=job.queue_url, Entries=batch)
        if response.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed entries: {response['Failed']}")


def _consume(
    sqs: Any, job: Job, batched: bool, seen: list[int], latencies: list[float] | None = None
) -> None:
    """Receive and delete until ``job.messages`` distinct ids are seen or nothing came for a while."""
    distinct: set[int] = set()
    last = time.monotonic()
    while len(distinct) < job.messages and time.monotonic() - last < _IDLE:
        response = sqs.receive_message(
            QueueUrl=job.queue_url, MaxNumberOfMessages=10 if batched else 1, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if not messages:
            continue
        last = time.monotonic()
        for message in messages:
            body = json.loads(message["Body"])
            seen.append(body["bid"])
            distinct.add(body["bid"])
            if latencies is not None:
                latencies.append((time.time() - body["t"]) * 1000)
            if not batched:
                sqs.delete_message(QueueUrl=job.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if batched:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=job.queue_url, Entries=entries)


def _is_batched(job: Job) -> bool:
    return job.client == "boto3-batched"


def publish(job: Job) -> Outcome:
    sqs = _client(job)
    send = _send_batched if _is_batched(job) else _send_naive
    with Meter() as meter:
        send(sqs, job)
    return meter.outcome(job.messages)


def consume(job: Job) -> Outcome:
    sqs = _client(job)
    _send_batched(sqs, job)  # the backlog (not measured)
    seen: list[int] = []
    with Meter() as meter:
        _consume(sqs, job, _is_batched(job), seen)
    return meter.outcome(job.messages, seen)


def e2e(job: Job) -> Outcome:
    sqs = _client(job)
    send = _send_batched if _is_batched(job) else _send_naive
    seen: list[int] = []
    latencies: list[float] = []
    with Meter() as meter:
        publisher = threading.Thread(target=send, args=(_client(job), job))
        publisher.start()
        _consume(sqs, job, _is_batched(job), seen, latencies)
        publisher.join()
    return meter.outcome(job.messages, seen, latencies_ms={"e2e": latencies})


def fanout(job: Job) -> Outcome:
    sns = _client(job, "sns")
    with Meter() as meter:
        if _is_batched(job):
            for batch in _batches(job):
                entries = [{"Id": e["Id"], "Message": e["MessageBody"]} for e in batch]
                response = sns.publish_batch(TopicArn=job.topic_arn, PublishBatchRequestEntries=entries)
                if response.get("Failed"):
                    raise RuntimeError(f"PublishBatch failed entries: {response['Failed']}")
        else:
            for i in range(job.messages):
                sns.publish(TopicArn=job.topic_arn, Message=body_text(i, job.body_bytes))
    return meter.outcome(job.messages)


def offload_boto3_batched(job: Job) -> Outcome:
    """The inline baseline for large payloads: no S3, just big SQS messages (SQS allows 1 MiB)."""
    sqs = _client(job)
    attributes = sqs.get_queue_attributes(QueueUrl=job.queue_url, AttributeNames=["MaximumMessageSize"])
    limit = int(attributes["Attributes"]["MaximumMessageSize"])
    if limit < job.body_bytes + 1024:
        raise NotAvailable(f"this server caps SQS messages at {limit:,} bytes: the payload cannot go inline")
    per_batch = max(1, min(10, OFFLOAD_BATCH_BYTES // (job.body_bytes + 512)))
    seen: list[int] = []
    with Meter() as meter:
        for batch in _batches(job, size=per_batch):
            response = sqs.send_message_batch(QueueUrl=job.queue_url, Entries=batch)
            if response.get("Failed"):
                raise RuntimeError(f"SendMessageBatch failed entries: {response['Failed']}")
        _consume(sqs, job, True, seen)
    return meter.outcome(job.messages, seen, notes="inline in SQS, no S3")
