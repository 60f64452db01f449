"""Throughput of 300 KiB bodies through S3 offload on the embedded emulator (moto), against plain SQS.

Run: .venv/bin/python benchmarks/offload_throughput.py [--messages 200] [--size 307200] [--endpoint-url URL]

Each mode sends ``--messages`` bodies with ``send_many`` (uploads concurrent, batches size-aware), then
receives and acks them all (downloads concurrent, S3 deletes after SQS deletes), and reports MB/s of body
bytes (1 MB = 10^6 bytes). Client and emulator share this machine's cores, so this measures qfan plus moto.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import anyio

import qfan


async def run(messages: int, size: int, offload: bool, endpoint_url: str | None) -> tuple[float, float]:
    app = qfan.App("bench", endpoint_url=endpoint_url)
    policy = qfan.Offload(f"qfan-bench-{uuid.uuid4().hex[:8]}", always=True) if offload else None
    queue = app.queue(f"bench-{uuid.uuid4().hex[:8]}", bytes, offload=policy)
    bodies = [os.urandom(size) for _ in range(messages)]
    async with app:
        started = time.perf_counter()
        for start in range(0, messages, 50):  # bounded backlog: moto's calls cost O(queue length)
            await queue.send_many(bodies[start : start + 50])
        send_seconds = time.perf_counter() - started
        started = time.perf_counter()
        received = 0
        async with queue.consume(prefetch=20, wait=1) as stream:
            async for message in stream:
                assert len(message.body) == size
                await message.ack()
                received += 1
                if received == messages:
                    break
        receive_seconds = time.perf_counter() - started
        await queue.delete()
    megabytes = messages * size / 1e6
    return megabytes / send_seconds, megabytes / receive_seconds


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=300 * 1024)
    parser.add_argument("--endpoint-url", help="another emulator (default: the embedded one)")
    args = parser.parse_args()
    async with qfan.local(set_environment=args.endpoint_url is None):
        for offload in (True, False):
            mode = "offload (S3)" if offload else "plain SQS   "
            try:
                send, receive = await run(args.messages, args.size, offload, args.endpoint_url)
            except qfan.MessageTooLarge as exc:  # e.g. an emulator whose queues stop at 256 KiB
                print(f"{mode}  not possible: {exc}")
                continue
            print(
                f"{mode}  {args.messages} x {args.size} B:  send {send:6.1f} MB/s   "
                f"receive+ack {receive:6.1f} MB/s"
            )


if __name__ == "__main__":
    anyio.run(main)
