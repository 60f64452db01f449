"""qfan against the alternatives, on the same server, in the same run.

    python -m benchmarks [--server fauxqs|ministack|moto|localstack] [--endpoint-url URL]
                         [--scenario NAME ...] [--client NAME ...] [--messages N] [--out DIR]

The harness starts the server itself (fauxqs by default, installed with npm on first use), runs every
client x scenario in its own process, verifies delivery by id, and writes results.json, results.md and
chart.png into --out (default benchmarks/results/<time>/, also copied to benchmarks/results/latest/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .clients import CLIENTS
from .harness import ROOT, SCENARIOS, Progress, Settings, results_document, run_matrix
from .report import chart, markdown
from .servers import SERVERS, ServerUnavailable, running_server


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "--server", choices=SERVERS, default="fauxqs", help="the emulator to start (default fauxqs)"
    )
    p.add_argument("--endpoint-url", help="use this running endpoint instead of starting a server")
    p.add_argument("--real-aws", action="store_true", help="use AWS itself (your credentials and region)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable; default all")
    p.add_argument("--client", action="append", choices=CLIENTS, help="repeatable; default all")
    p.add_argument("--messages", type=int, help="N for publish, consume and e2e (default 10000)")
    p.add_argument("--fanout-messages", type=int, help="N for fanout (default 3000)")
    p.add_argument("--rpc-messages", type=int, help="requests for rpc, split over the concurrencies (900)")
    p.add_argument("--offload-messages", type=int, help="N for offload (default 200)")
    p.add_argument("--body-bytes", type=int, help="body size for all but offload (default 200)")
    p.add_argument("--concurrency", type=int, help="tasks/concurrency for the concurrent clients (16)")
    p.add_argument("--timeout", type=float, help="seconds before a client process is killed (180)")
    p.add_argument("--out", type=Path, help="output directory")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings(region=args.region)
    for name in (
        "messages",
        "fanout_messages",
        "rpc_messages",
        "offload_messages",
        "body_bytes",
        "concurrency",
        "timeout",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    return settings


def log(line: str) -> None:
    sys.stderr.write(line + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from(args)
    started = time.time()
    scenarios = args.scenario or list(SCENARIOS)
    clients = args.client or list(CLIENTS)
    command = " ".join(
        ["python -m benchmarks", shlex.join(sys.argv[1:] if argv is None else list(argv))]
    ).strip()
    out = args.out or ROOT / "benchmarks" / "results" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if args.real_aws and args.endpoint_url:
        log("--real-aws and --endpoint-url exclude each other")
        return 2
    try:
        with running_server(args.server, args.endpoint_url, log, real_aws=args.real_aws) as server:
            log(f"server: {server.version} at {server.endpoint_url or 'AWS'}")
            progress = Progress(len(scenarios) * len(clients))
            cells = asyncio.run(run_matrix(server, settings, scenarios, clients, progress))
    except ServerUnavailable as exc:
        log(f"cannot run the benchmark: {exc}")
        return 2
    document = results_document(server, settings, cells, command, started)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=2))
    (out / "results.md").write_text(markdown(document))
    why_not = chart(document, out / "chart.png")
    if why_not:
        log(why_not)
    if args.out is None:
        latest = out.parent / "latest"
        shutil.rmtree(latest, ignore_errors=True)
        shutil.copytree(out, latest)
    sys.stdout.write(markdown(document))
    log(f"results: {out}/results.json, results.md" + ("" if why_not else ", chart.png"))
    failed = [c for c in cells if c.status == "error" or c.lost or c.duplicates or c.left_in_queue]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
