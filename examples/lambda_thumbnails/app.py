"""The image -> thumbnail fanout as an AWS Lambda function.

An upload event is published to the ``images`` topic; SNS fans it out to the ``thumbnails`` queue (and to
any other subscriber); Lambda's event source mapping hands batches of the queue's messages to ``handler``,
which answers with the records that failed (``ReportBatchItemFailures``). A non-image is rejected: qfan
copies it to the dead-letter queue with the reason and does not report it, so it is not retried.

Deploy with SAM (see template.yaml and the README's "Running on AWS Lambda"), or run it locally as
publish_local.py says.
"""

import logging
import os

import msgspec

import qfan

logger = logging.getLogger("thumbnails")


class ImageUploaded(msgspec.Struct):
    key: str
    kind: str
    size: int


SIZES = (128, 512)

# The queues exist already (the SAM template creates them): look them up, never create or change them.
app = qfan.App("thumbnails", declare_on_start=False)
dead_letter = app.queue(os.environ.get("THUMBNAILS_DLQ", "thumbnails-dlq"), create=False)
thumbnails = app.queue(
    os.environ.get("THUMBNAILS_QUEUE", "thumbnails"), ImageUploaded, dead_letter=dead_letter, create=False
)


def thumbnail_keys(event: ImageUploaded) -> list[str]:
    """Where the thumbnails of an image go (the resizing itself is the application's, e.g. Pillow)."""
    stem = event.key.rpartition(".")[0] or event.key
    return [f"thumbnails/{stem}-{size}.{event.kind}" for size in SIZES]


@app.worker(thumbnails, concurrency=8)
async def make_thumbnails(event: ImageUploaded, message: qfan.Message[ImageUploaded]) -> None:
    if event.kind not in ("jpeg", "png"):
        raise qfan.Reject(f"cannot thumbnail {event.kind}")  # to the dead-letter queue, not retried
    for key in thumbnail_keys(event):
        logger.info("thumbnail %s -> %s (receive #%d)", event.key, key, message.receive_count)


# Created once per cold start; warm invocations reuse it (and its connection, once one is needed).
handler = app.lambda_handler()
