"""A Lambda function's cold start on qfan: ``import qfan``, and a cold handler's import plus first invocation.

    python -m benchmarks.lambda_cold_start [--runs 15] [--server moto] [--endpoint-url URL] [--out DIR]

Ten messages are sent to a queue on the server and really received (every attribute), and turned into the
SQS event Lambda would deliver. Then each measurement runs in a fresh Python process, ``--runs`` times
(``benchmarks/lambda_child.py``): ``import qfan`` alone; a function module on qfan (app, typed worker,
``app.lambda_handler()``) and its first invocation with the event (all records succeed, so no AWS call is
needed: Lambda deletes them); and the same function on Powertools' batch utility when it is installed
(``aws-lambda-powertools``, in the ``bench`` extra). The kinds take turns, after one unmeasured round.
Medians and minimums, in milliseconds, go to
``lambda_cold_start.json`` and ``lambda_cold_start.md`` in ``--out`` and to stdout. Targets: ``import qfan``
<= 150 ms, cold import + first invocation <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import qfan
from qfan._lambda import sqs_event

from .servers import SERVERS, running_server

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("import", "qfan", "powertools")
LABELS = {
    "import": "import qfan",
    "qfan": "qfan: app.lambda_handler()",
    "powertools": "Powertools BatchProcessor",
}


async def received_event(endpoint_url: str, queue_name: str) -> dict[str, Any]:
    """Ten typed messages sent, then really received, as Lambda's SQS event."""
    app = qfan.App(
        "bench-lambda",
        endpoint_url=endpoint_url,
        region="us-east-1",
        access_key_id="bench",
        secret_access_key="bench",
    )
    queue = app.queue(queue_name)
    async with app:
        await queue.send_many([{"id": i, "item": "pen"} for i in range(10)], attributes={"kind": "bench"})
        info = await queue.declare()
        received: list[Any] = []
        while len(received) < 10:
            received += await app.connection.sqs.receive(
                info.url, max_messages=10, wait_seconds=5, visibility_timeout=None
            )
        await queue.purge()
    return sqs_event(received, info.arn, "us-east-1")


def run_child(kind: str, event_path: Path, queue: str) -> dict[str, float]:
    env = {
        **os.environ,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.lambda_child", kind, str(event_path), queue],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarise(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = samples[0].keys()
    return {
        key: {
            "median": statistics.median(s[key] for s in samples),
            "min": min(s[key] for s in samples),
        }
        for key in keys
    }


def table(results: dict[str, Any]) -> str:
    columns = ("import_ms", "init_ms", "first_invocation_ms", "cold_ms", "warm_invocation_ms")
    lines = [
        "| | import | init (module) | first invocation | cold: init + first | warm invocation |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, row in results.items():
        if row is None:
            lines.append(f"| {LABELS[kind]} | not installed | | | | |")
            continue
        cells = [f"{row[c]['median']:.0f} (min {row[c]['min']:.0f})" if c in row else "" for c in columns]
        lines.append(f"| {LABELS[kind]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.lambda_cold_start", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per measurement (15)")
    parser.add_argument("--server", choices=SERVERS, default="moto")
    parser.add_argument("--endpoint-url")
    parser.add_argument(
        "--out", type=Path, help="output directory (default benchmarks/results/lambda-<time>)"
    )
    args = parser.parse_args(argv)
    out: Path = args.out or ROOT / "benchmarks" / "results" / time.strftime(
        "lambda-%Y%m%dT%H%M%SZ", time.gmtime()
    )
    out.mkdir(parents=True, exist_ok=True)
    queue = f"bench-lambda-{uuid.uuid4().hex[:8]}"
    with running_server(args.server, args.endpoint_url, print) as server:
        assert server.endpoint_url is not None
        event = asyncio.run(received_event(server.endpoint_url, queue))
    event_path = out / "event.json"
    event_path.write_text(json.dumps(event))
    kinds = [k for k in KINDS if k != "powertools" or importlib.util.find_spec("aws_lambda_powertools")]
    samples: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for kind in kinds:  # one unmeasured round: the files' first read from disk is no cold start's cost
        run_child(kind, event_path, queue)
    for _ in range(args.runs):  # interleaved, so a busy moment on the machine hits every kind alike
        for kind in kinds:
            samples[kind].append(run_child(kind, event_path, queue))
    results: dict[str, Any] = {kind: summarise(samples[kind]) if kind in samples else None for kind in KINDS}
    command = " ".join(
        ["python -m benchmarks.lambda_cold_start", *(argv if argv is not None else sys.argv[1:])]
    )
    document = {
        "command": command,
        "python": sys.version.split()[0],
        "runs": args.runs,
        "records": len(event["Records"]),
        "targets_ms": {"import qfan": 150, "cold: init + first invocation": 300},
        "results": results,
    }
    (out / "lambda_cold_start.json").write_text(json.dumps(document, indent=2))
    markdown = f"`{command}` ({args.runs} fresh processes each; median and minimum, ms)\n\n{table(results)}\n"
    (out / "lambda_cold_start.md").write_text(markdown)
    print(markdown)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
