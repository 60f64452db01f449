"""Worker throughput on the embedded emulator: messages handled (received, handler, deleted) per second.

    python -m benchmarks.worker_throughput [--messages 2000] [--concurrency 32] [--endpoint-url URL]

The embedded emulator (moto, in this process) is slow and O(queue length) per call, so the number mostly
measures moto; ``--endpoint-url`` points the same run at a faster server. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import anyio

import qfan
from qfan._local import running_moto


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(endpoint_url: str, messages: int, concurrency: int, preload: bool) -> dict[str, object]:
    app = qfan.App("bench", endpoint_url=endpoint_url, region="us-east-1")
    queue = app.queue(f"bench-{time.time_ns()}")
    handled = 0

    @app.worker(queue, concurrency=concurrency, receive_wait=1)
    async def handle(body: dict[str, int]) -> None:
        nonlocal handled
        handled += 1

    async with app:
        if preload:
            await queue.send_many([{"n": i} for i in range(messages)])
        started, cpu = time.perf_counter(), _cpu()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: app.run(stats_interval=None))
            if not preload:
                await queue.send_many([{"n": i} for i in range(messages)])
            while handled < messages:  # noqa: ASYNC110 - a benchmark's plain poll
                await anyio.sleep(0.01)
            elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
            app.stop()
        await queue.delete()
    return {
        "messages": messages,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(messages / elapsed, 1),
        "process_cpu_us_per_msg": round(cpu / messages * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--preload", action="store_true", help="fill the queue first, then consume")
    args = parser.parse_args()
    if args.endpoint_url:
        result = anyio.run(measure, args.endpoint_url, args.messages, args.concurrency, args.preload)
        result["server"] = args.endpoint_url
    else:
        with running_moto() as emulator:
            result = anyio.run(measure, emulator.endpoint_url, args.messages, args.concurrency, args.preload)
        result["server"] = "embedded moto (same process: its CPU is counted too)"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
