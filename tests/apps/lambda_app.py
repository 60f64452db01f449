"""A Lambda function's module, run by ``qfan lambda run tests.apps.lambda_app:app`` in the tests.

Configured by environment: QFAN_TEST_QUEUE (queue name), QFAN_TEST_OUT (file to append handled ids to),
plus the usual AWS_* variables pointing at the emulator. Items with ``fail`` set raise, and come back after
5 s (the worker's backoff).
"""

import os

import msgspec

import qfan


class Item(msgspec.Struct):
    id: int
    fail: bool = False


app = qfan.App("lambda-app", declare_on_start=False)
items = app.queue(os.environ.get("QFAN_TEST_QUEUE", "lambda-items"), Item, create=False)
_out = os.environ.get("QFAN_TEST_OUT", os.devnull)


@app.worker(items, backoff=qfan.Backoff(initial=5, maximum=5, jitter=0))
def record(item: Item) -> None:
    with open(_out, "a") as out:
        out.write(f"{item.id}\n")
    if item.fail:
        raise RuntimeError(f"item {item.id} fails")


handler = app.lambda_handler()
