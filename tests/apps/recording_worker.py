"""A worker app run by the tests as a real subprocess (``qfan run tests.apps.recording_worker:app``).

Configured by environment: QFAN_TEST_QUEUE (queue name), QFAN_TEST_OUT (file to append handled ids to),
QFAN_TEST_SLEEP (seconds each handler takes), QFAN_TEST_RECEIVE_WAIT (long-poll seconds, default 3), plus the
usual AWS_* variables pointing at the emulator.
"""

import os

import anyio
import msgspec

import qfan


class Item(msgspec.Struct):
    id: int


app = qfan.App("recording-worker")
items = app.queue(os.environ.get("QFAN_TEST_QUEUE", "recording"), Item, visibility_timeout=2)
_out = os.environ.get("QFAN_TEST_OUT", os.devnull)
# Short long polls: a stop waits for the receive in flight (it may bring messages), 20 s on an idle queue.
_receive_wait = int(os.environ.get("QFAN_TEST_RECEIVE_WAIT", "3"))
_sleep = float(os.environ.get("QFAN_TEST_SLEEP", "0.2"))
_pids = os.environ.get("QFAN_TEST_PIDS")  # if set, "id pid" lines: which process handled what


@app.worker(items, concurrency=4, prefetch=4, receive_wait=_receive_wait)
async def record(item: Item) -> None:
    await anyio.sleep(_sleep)
    with open(_out, "a") as out:  # noqa: ASYNC230 - a tiny append, the point is to be durable at once
        out.write(f"{item.id}\n")
        out.flush()
    if _pids:
        with open(_pids, "a") as pids:  # noqa: ASYNC230 - as above
            pids.write(f"{item.id} {os.getpid()}\n")
