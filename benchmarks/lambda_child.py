"""One cold start, in a fresh process: ``python -m benchmarks.lambda_child KIND EVENT_JSON QUEUE``.

KIND ``import``: only ``import qfan``. KIND ``qfan``: a Lambda function module built on qfan (an app, a typed
worker, ``app.lambda_handler()``), then its first and a second invocation with the event. KIND
``powertools``: the same function on Powertools' batch utility. Prints one JSON line of milliseconds.
"""

from __future__ import annotations

import json
import sys
import time


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def qfan_function(queue: str) -> object:
    import msgspec

    import qfan

    class Order(msgspec.Struct):
        id: int
        item: str

    app = qfan.App("bench-lambda")
    handled = []

    @app.worker(app.queue(queue, Order))
    async def handle(order: Order) -> None:
        handled.append(order.id)

    return app.lambda_handler()


def powertools_function(queue: str) -> object:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    processor = BatchProcessor(event_type=EventType.SQS)
    handled = []

    def record_handler(record: SQSRecord) -> None:
        body = json.loads(record.body)
        handled.append(int(body["id"]))

    def handler(event: dict, context: object) -> dict:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


def main() -> int:
    kind, event_path, queue = sys.argv[1:4]
    with open(event_path) as file:
        event = json.load(file)
    started = time.perf_counter()
    if kind == "import":
        import qfan  # noqa: F401

        print(json.dumps({"import_ms": (time.perf_counter() - started) * 1000}))
        return 0
    handler = (qfan_function if kind == "qfan" else powertools_function)(queue)
    loaded = time.perf_counter()
    first = handler(event, Context())  # type: ignore[operator]
    invoked = time.perf_counter()
    second = handler(event, Context())  # type: ignore[operator]
    warm = time.perf_counter()
    assert first == second == {"batchItemFailures": []}, (first, second)
    print(
        json.dumps(
            {
                "init_ms": (loaded - started) * 1000,
                "first_invocation_ms": (invoked - loaded) * 1000,
                "cold_ms": (invoked - started) * 1000,
                "warm_invocation_ms": (warm - invoked) * 1000,
            }
        )
    )
    close = getattr(handler, "close", None)
    if close is not None:
        close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
