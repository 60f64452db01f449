"""Micro-benchmark: qfan's own per-message work on the send and receive paths, without any server.

    python -m benchmarks.hot_path [--rounds 200000]

- ``send``: encode and check one message (``prepare``), build its ``SendMessageBatch`` entry, JSON-encode it;
- ``receive``: turn one received message into a ``qfan.Message`` (digests verified, attributes decoded).

Prints CPU microseconds per message (best of 5). Run it on two checkouts (``PYTHONPATH=<checkout>``) to see
what a change costs the hot path, e.g. telemetry when no OpenTelemetry SDK is installed (no hooks run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import msgspec

from qfan._pipeline._message import Message
from qfan._pipeline._outgoing import Destination, prepare
from qfan._transport import ReceivedMessage, SendEntry, WireAttribute
from qfan._wire._codec import Decoder, Encoder

BODY = {"id": 1, "item": "pen", "pad": "x" * 150}


class _Queue:
    name = "orders"


def send_path(rounds: int) -> None:
    encode, encoder = msgspec.json.Encoder().encode, Encoder()
    destination = Destination("orders", False, False, 262_144)
    for _ in range(rounds):
        out = prepare(encoder, destination, BODY, delay=None, group_id=None, dedup_id=None, attributes=None)
        encode(SendEntry("0", out.body, out.attributes, out.delay, out.group_id, out.dedup_id))


def receive_path(rounds: int) -> None:
    raw = ReceivedMessage(
        "id",
        "handle",
        msgspec.json.encode(BODY).decode(),
        {"content-type": WireAttribute("String", "application/json")},
        {"SentTimestamp": "1796099739604", "ApproximateReceiveCount": "1"},
    )
    decoder, queue = Decoder(dict), _Queue()
    for _ in range(rounds):
        Message(raw, decoder, queue)  # type: ignore[arg-type]


def best_of(path: Callable[[int], None], rounds: int, runs: int = 5) -> float:
    """The lowest CPU microseconds per message over ``runs`` runs."""
    times = []
    for _ in range(runs):
        started = time.process_time()
        path(rounds)
        times.append((time.process_time() - started) / rounds * 1e6)
    return min(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200_000)
    args = parser.parse_args(argv)
    for name, path in (("send", send_path), ("receive", receive_path)):
        print(f"{name:8} {best_of(path, args.rounds):6.3f} µs/message")


if __name__ == "__main__":
    main()
