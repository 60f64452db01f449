"""AWS's Python SQS extended client (boto3 + S3) as its README shows it: ``large_payload_support`` names
the bucket; bodies above 256 KiB go to S3 and SQS carries a pointer; receive fetches them back and
``delete_payload_from_s3`` removes the object with the message. Only the large-payload scenario."""

from __future__ import annotations

import json
import time
from typing import Any

from ..common import Job, Meter, NotAvailable, Outcome, body_text

_OTHER = "the extended client is for large payloads; the boto3 rows show plain SQS"
UNAVAILABLE = {"publish": _OTHER, "consume": _OTHER, "e2e": _OTHER, "fanout": _OTHER, "rpc": _OTHER}
_IDLE = 10.0


def _client(job: Job) -> Any:
    import boto3
    import sqs_extended_client  # noqa: F401 - registers the extension on boto3's SQS client
    from botocore.config import Config

    sqs = boto3.client("sqs", region_name=job.region, endpoint_url=job.endpoint_url)
    sqs.large_payload_support = job.bucket
    sqs.use_legacy_attribute = False
    sqs.delete_payload_from_s3 = True
    if job.endpoint_url:  # emulators want path-style S3 addressing
        sqs.s3_client = boto3.client(
            "s3",
            region_name=job.region,
            endpoint_url=job.endpoint_url,
            config=Config(s3={"addressing_style": "path"}),
        )
    return sqs


def _delete(sqs: Any, job: Job, receipt_handle: str) -> None:
    try:
        sqs.delete_message(QueueUrl=job.queue_url, ReceiptHandle=receipt_handle)
    except sqs.exceptions.ReceiptHandleIsInvalid as exc:
        # The client embeds the S3 pointer in the receipt handle and takes the original back with
        # split("-")[-1], which breaks on servers whose receipt handles contain "-" (MiniStack's do).
        raise NotAvailable(
            "amazon-sqs-extended-client 1.0.1 cannot delete on this server: it recovers receipt handles "
            "with split('-'), and this server's handles contain '-'"
        ) from exc


def offload(job: Job) -> Outcome:
    sqs = _client(job)
    seen: list[int] = []
    with Meter() as meter:
        for i in range(job.messages):
            sqs.send_message(QueueUrl=job.queue_url, MessageBody=body_text(i, job.body_bytes))
        last = time.monotonic()
        while len(set(seen)) < job.messages and time.monotonic() - last < _IDLE:
            response = sqs.receive_message(
                QueueUrl=job.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                continue
            last = time.monotonic()
            for message in messages:
                body = message["Body"]
                if len(body) < job.body_bytes:
                    raise RuntimeError(f"payload came back short: {len(body)} bytes")
                seen.append(json.loads(body)["bid"])
                _delete(sqs, job, message["ReceiptHandle"])
    return meter.outcome(job.messages, seen, notes="S3 offload (put + pointer, get, delete object)")
