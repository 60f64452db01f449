"""A worker that logs its own credentials, run by ``tests/test_security_logs.py`` through ``qfan run``.

It stands for application code (or a library below it) that puts a secret into a log record: in the
message arguments at DEBUG, and in an exception's text logged with its traceback. The CLI's redaction must
scrub both. Configured like ``recording_worker``: QFAN_TEST_QUEUE, QFAN_TEST_OUT and the AWS_* variables.
"""

import logging
import os

import msgspec

import qfan


class Item(msgspec.Struct):
    id: int


logger = logging.getLogger("tests.leaky")
app = qfan.App("leaky-worker")
items = app.queue(os.environ.get("QFAN_TEST_QUEUE", "leaky"), Item, visibility_timeout=2)
_out = os.environ.get("QFAN_TEST_OUT", os.devnull)
# Short long polls: a stop waits for the receive in flight (it may bring messages), 20 s on an idle queue.
_receive_wait = int(os.environ.get("QFAN_TEST_RECEIVE_WAIT", "3"))


@app.worker(items, receive_wait=_receive_wait)
async def record(item: Item) -> None:
    logger.debug("handling %s with secret key %s", item.id, os.environ.get("AWS_SECRET_ACCESS_KEY"))
    try:
        raise RuntimeError(f"upstream rejected session token {os.environ.get('AWS_SESSION_TOKEN')}")
    except RuntimeError:
        logger.exception("handled %s after an upstream failure", item.id)
    with open(_out, "a") as out:  # noqa: ASYNC230 - a tiny append, the point is to be durable at once
        out.write(f"{item.id}\n")
