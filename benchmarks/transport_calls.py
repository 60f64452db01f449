"""Client CPU per hot SQS call on each transport, below qfan's queue and worker layers.

    python -m benchmarks.transport_calls [--calls 2000] [--server fauxqs] [--concurrency 16]

For each transport it opens the app's SQS planes, then times (process CPU) ``--calls`` SendMessageBatch
calls of 10 ~200 B entries, and as many ReceiveMessage (10) + DeleteMessageBatch pairs, from
``--concurrency`` tasks. This is the transport's own cost per call, what the lean path was built to cut.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from qfan._transport import ConnectionSettings, ReceiptEntry, SendEntry, open_sqs_planes

from .servers import SERVERS, running_server


async def measure(endpoint_url: str, transport: str, calls: int, concurrency: int) -> tuple[float, float]:
    """Microseconds of process CPU per send call and per receive + delete pair."""
    settings = ConnectionSettings(
        region="us-east-1",
        endpoint_urls={"sqs": endpoint_url},
        access_key_id="bench",
        secret_access_key="bench",
    )
    async with open_sqs_planes(settings, transport) as (data, control):  # type: ignore[arg-type]
        url = await control.create_queue(f"calls-{uuid.uuid4().hex[:8]}", {}, {})
        entries = [SendEntry(str(i), "x" * 200) for i in range(10)]
        remaining = calls

        async def sender() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await data.send_batch(url, entries)

        async def consumer() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                got = await data.receive(url, max_messages=10, wait_seconds=1, visibility_timeout=None)
                receipts = [ReceiptEntry(str(i), m.receipt_handle) for i, m in enumerate(got)]
                if receipts:
                    await data.delete_batch(url, receipts)

        results = []
        for role in (sender, consumer):
            remaining = calls
            start = time.process_time()
            await asyncio.gather(*(role() for _ in range(concurrency)))
            results.append((time.process_time() - start) / calls * 1e6)
        await control.delete_queue(url)
    return results[0], results[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.transport_calls", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--server", choices=SERVERS, default="fauxqs")
    parser.add_argument("--endpoint-url")
    args = parser.parse_args()
    with running_server(args.server, args.endpoint_url, print) as server:
        assert server.endpoint_url is not None
        print(
            f"{args.calls} calls each, {args.concurrency} tasks, batches of 10 x 200 B; process CPU per call"
        )
        for transport in ("botocore", "fast"):
            send, receive_delete = asyncio.run(
                measure(server.endpoint_url, transport, args.calls, args.concurrency)
            )
            print(
                f"{transport:9} SendMessageBatch {send:6.0f} µs   "
                f"ReceiveMessage + DeleteMessageBatch {receive_delete:6.0f} µs"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
