"""The ``qfan`` command line: local, send, receive, run, top, declare, dlq redrive, sweep-reply-queues,
lambda, archive, demo."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

import anyio

from .._exceptions import QfanError
from .._transport import redact
from ._archive import add_parser as add_archive_parser
from ._commands import (
    _IMPORT,
    _attribute,
    _declare,
    _demo,
    _load_app,
    _local,
    _receive,
    _redrive,
    _run,
    _send,
    _sweep,
)
from ._lambda import add_lambda_commands
from ._supervisor import processes_option, supervise
from ._top import run_top


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qfan", description="Async, typed, batching messaging on AWS SQS.")
    parser.add_argument("--version", action="version", version=f"qfan {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def connection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--endpoint-url", help="AWS or emulator endpoint (default: AWS_ENDPOINT_URL_SQS, then AWS)"
        )
        sub.add_argument("--region", help="AWS region (default: the AWS configuration chain)")

    local = commands.add_parser("local", help="run the embedded emulator in the foreground")
    local.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (default 4566)")
    local.set_defaults(run=_local)

    send = commands.add_parser("send", help="send one message to a queue")
    send.add_argument("queue", metavar="QUEUE")
    send.add_argument("body", metavar="BODY")
    send.add_argument("--json", action="store_true", help="BODY is JSON: send it as a JSON value")
    send.add_argument("--group-id", help="message group (required for FIFO queues)")
    send.add_argument("--dedup-id", help="FIFO deduplication id")
    send.add_argument("--delay", type=int, help="seconds before the message is visible")
    send.add_argument("--attribute", "-a", type=_attribute, action="append", default=[], metavar="NAME=VALUE")
    send.add_argument("--create", action="store_true", help="create the queue if it does not exist")
    connection(send)
    send.set_defaults(run=_send)

    receive = commands.add_parser("receive", help="receive messages and print them as JSON lines")
    receive.add_argument("queue", metavar="QUEUE")
    receive.add_argument("-n", type=int, default=1, help="how many messages at most (default 1)")
    receive.add_argument("--wait", type=int, default=5, help="long-poll seconds per receive (default 5)")
    receive.add_argument(
        "--ack", action="store_true", help="delete messages once printed (default: leave them)"
    )
    receive.add_argument(
        "--offload-bucket",
        action="append",
        default=[],
        metavar="BUCKET[/PREFIX]",
        help="read S3-offloaded bodies from BUCKET, only under PREFIX when given (repeatable); --ack then "
        "deletes their objects too. Pointers anywhere else are refused: never fetched, never deleted",
    )
    receive.add_argument(
        "--offload-prefix",
        default="",
        metavar="PREFIX",
        help="the key prefix of the first --offload-bucket (same as BUCKET/PREFIX)",
    )
    connection(receive)
    receive.set_defaults(run=_receive)

    run = commands.add_parser("run", help="run an app's workers until SIGINT/SIGTERM")
    run.add_argument(
        "app", metavar="MODULE:APP", help=f"where the qfan.App lives, e.g. service.workers:app; {_IMPORT}"
    )
    run.add_argument("--worker", action="append", metavar="NAME", help="run only this worker (repeatable)")
    run.add_argument("--concurrency", type=int, help="override every worker's concurrency")
    run.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds running handlers get on shutdown (30)"
    )
    run.add_argument(
        "--processes",
        type=_processes,
        default=1,
        metavar="N",
        help="worker processes of this app under one supervisor (default 1; 'auto': one per core); "
        "crashed ones are restarted, signals are forwarded",
    )
    run.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="stop gracefully and exit 0 once every worker has held no message for SECONDS (batch jobs)",
    )
    run.add_argument(
        "--ready-file",
        metavar="PATH",
        help="create PATH once every worker's first receive came back (readiness), remove it on exit",
    )
    run.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    run.add_argument(
        "--log-wire",
        action="store_true",
        help="at DEBUG, also log every AWS request and answer (botocore, aiohttp: headers, bodies); "
        "credentials, tokens and signatures are redacted from all output either way",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus /metrics, /healthz and /readyz on port N (needs qfan[otel])",
    )
    run.add_argument(
        "--backlog-interval",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between reads of each consumed queue's backlog for the gauges (default 60)",
    )
    run.set_defaults(run=_run)

    top = commands.add_parser("top", help="live view of queues' backlog, in flight, delayed, DLQ depth")
    top.add_argument("app", nargs="?", metavar="MODULE:APP", help=f"watch this app's queues; {_IMPORT}")
    top.add_argument("--queue", action="append", default=[], metavar="NAME", help="watch this queue")
    top.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    top.add_argument("--once", action="store_true", help="print one sample and exit")
    top.add_argument("--json", action="store_true", help="with --once: print the sample as JSON")
    connection(top)
    top.set_defaults(run=_top)

    declare = commands.add_parser("declare", help="print the topology plan and apply it")
    declare.add_argument("app", metavar="MODULE:APP", help=f"where the qfan.App lives; {_IMPORT}")
    declare.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    declare.set_defaults(run=_declare)

    sweep = commands.add_parser("sweep-reply-queues", help="delete reply queues left by crashed processes")
    sweep.add_argument("--idle", type=float, default=600.0, help="heartbeat older than this many seconds")
    connection(sweep)
    sweep.set_defaults(run=_sweep)

    dlq = commands.add_parser("dlq", help="dead-letter queue tools")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    redrive = dlq_commands.add_parser(
        "redrive",
        help="move dead-lettered messages back: qfan's to their dead-letter-source queue, SQS's with its "
        "move task (followed to its end; exit status 2 when it fails)",
    )
    redrive.add_argument("queue", metavar="DLQ")
    redrive.add_argument(
        "--to", metavar="QUEUE", help="move every message to QUEUE (default: each to the queue it came from)"
    )
    redrive.add_argument("--limit", type=int, help="move at most this many messages")
    redrive.add_argument(
        "--poll", type=float, default=1.0, help="seconds between progress checks of a move task (1)"
    )
    connection(redrive)
    redrive.set_defaults(run=_redrive)

    add_lambda_commands(commands)
    connection(add_archive_parser(commands))

    demo = commands.add_parser(
        "demo", help="typed messages through a standard and a FIFO queue (embedded emulator by default)"
    )
    demo.add_argument("--messages", type=int, default=1500, help="messages per queue (default 1500)")
    demo.add_argument("--groups", type=int, default=8, help="FIFO message groups (default 8)")
    demo.add_argument(
        "--emulator",
        choices=("ministack", "moto"),
        help="the embedded emulator (default: ministack when installed, else moto); not with --endpoint-url",
    )
    connection(demo)
    demo.set_defaults(run=_demo)

    return parser


def _processes(value: str) -> int:
    try:
        return processes_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _event_loop(worker: bool) -> dict[str, bool]:
    """uvloop for ``qfan run`` when it is installed (``pip install 'qfan[speed]'``), else asyncio's loop."""
    if not worker or os.environ.get("QFAN_UVLOOP", "1") == "0":
        return {}
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}


async def _top(args: argparse.Namespace) -> int:
    return await run_top(args, _load_app)


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qfan`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(arguments)
    command: Callable[[argparse.Namespace], Awaitable[int]] = args.run
    try:
        if getattr(args, "processes", 1) > 1:
            return supervise(arguments, args.processes, args.drain_timeout)
        return anyio.run(command, args, backend_options=_event_loop(command is _run))
    except QfanError as exc:
        print(redact(f"qfan: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
