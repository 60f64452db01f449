"""Where a client's CPU goes, by layer: run one client x scenario under cProfile and add up each function's
own time by the package it belongs to.

    python -m benchmarks.profiling [--client qfan] [--scenario consume] [--messages 5000] [--server fauxqs]

cProfile slows Python code down (roughly 1.5-2x), so read the shares, not the absolute µs.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from collections import defaultdict

from .clients import CLIENTS, scenario_function
from .harness import SCENARIOS, Settings, child_environment
from .resources import Admin
from .servers import SERVERS, running_server

# (label, path fragment); the first match wins, so the more specific fragments come first.
LAYERS = [
    ("qfan: transport (_transport/)", "/qfan/_transport/"),
    ("qfan: worker engine, heartbeat, handler", "/qfan/_engine.py"),
    ("qfan: worker engine, heartbeat, handler", "/qfan/_heartbeat.py"),
    ("qfan: worker engine, heartbeat, handler", "/qfan/_handler.py"),
    ("qfan: worker engine, heartbeat, handler", "/qfan/_worker.py"),
    ("qfan: batching (coalescer)", "/qfan/_batching.py"),
    ("qfan: message, codec, attributes", "/qfan/_message.py"),
    ("qfan: message, codec, attributes", "/qfan/_codec.py"),
    ("qfan: message, codec, attributes", "/qfan/_attributes.py"),
    ("qfan: message, codec, attributes", "/qfan/_outgoing.py"),
    ("qfan: queue, consumer, app", "/qfan/"),
    ("tenacity (retry)", "/tenacity/"),
    ("aiobotocore", "/aiobotocore/"),
    ("botocore: serialize, sign, parse, hooks", "/botocore/"),
    ("aiohttp + yarl + multidict (HTTP)", "/aiohttp/"),
    ("aiohttp + yarl + multidict (HTTP)", "/yarl/"),
    ("aiohttp + yarl + multidict (HTTP)", "/multidict/"),
    ("anyio", "/anyio/"),
    ("asyncio event loop + sockets", "/asyncio/"),
    ("asyncio event loop + sockets", "selectors.py"),
    ("asyncio event loop + sockets", "socket.py"),
    ("boto3", "/boto3/"),
    ("json / msgspec (bodies)", "/json/"),
    ("logging", "/logging/"),
    ("benchmark harness (payloads, meter)", "/benchmarks/"),
]


def layer_of(filename: str, function: str) -> str:
    for label, fragment in LAYERS:
        if fragment in filename:
            return label
    if filename == "~":  # a C function: name it by what it is
        if "msgspec" in function:
            return "json / msgspec (bodies)"
        if any(word in function for word in ("select", "epoll", "socket", "recv", "send")):
            return "asyncio event loop + sockets"
        if any(word in function for word in ("hmac", "sha256", "md5", "openssl")):
            return "hashing (signatures, MD5 checks)"
        return "builtins (C)"
    return "other Python (stdlib)"


def by_layer(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, own_time, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[layer_of(filename, function)] += own_time
    return dict(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=CLIENTS, default="qfan")
    parser.add_argument("--scenario", choices=SCENARIOS, default="consume")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--server", choices=SERVERS, default="fauxqs")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--top", type=int, default=25, help="also print the top functions by own time")
    parser.add_argument("--dump", metavar="FILE", help="also write the raw profile (pstats) to FILE")
    args = parser.parse_args()
    settings = Settings(messages=args.messages)
    import asyncio

    from .harness import _job

    with running_server(args.server, args.endpoint_url, print) as server:
        os.environ.update(child_environment(server))

        async def prepare() -> object:
            async with Admin(server.endpoint_url, settings.region).open() as admin:
                return await admin.create(args.scenario, "profile")

        made = asyncio.run(prepare())
        messages, body_bytes = settings.size_of(args.scenario)
        job = _job(settings, server, args.client, args.scenario, messages, body_bytes, made)  # type: ignore[arg-type]
        profiler = cProfile.Profile()
        profiler.enable()
        outcome = scenario_function(args.client, args.scenario)(job)
        profiler.disable()
    if args.dump:
        profiler.dump_stats(args.dump)
    stats = pstats.Stats(profiler)
    layers = by_layer(stats)
    total = sum(layers.values())
    print(
        f"\n{args.client} · {args.scenario}: {outcome.messages} messages, {outcome.status} {outcome.reason}"
    )
    print(f"profiled CPU (own time, incl. setup) {total:.2f} s = {total / messages * 1e6:.0f} µs/msg\n")
    print(f"{'layer':<45} {'share':>6} {'µs/msg':>8}")
    for label, seconds in sorted(layers.items(), key=lambda item: -item[1]):
        print(f"{label:<45} {seconds / total:>6.1%} {seconds / messages * 1e6:>8.1f}")
    if args.top:
        print()
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
