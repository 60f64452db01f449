"""``qfan lambda run MODULE:APP --queue NAME``: an app's Lambda handler behind a local event source
mapping."""

from __future__ import annotations

import argparse
import sys

import anyio
import anyio.to_thread

from .._app._app import App
from .._lambda._poller import EventSource
from ._commands import _IMPORT, _configure_logging, _load_app


def add_lambda_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``lambda`` command group."""
    group = commands.add_parser("lambda", help="run an app's Lambda handler locally")
    sub = group.add_subparsers(dest="lambda_command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="poll a queue like Lambda's event source mapping, invoke app.lambda_handler() per batch",
    )
    run.add_argument("app", metavar="MODULE:APP", help=f"where the qfan.App lives; {_IMPORT}")
    run.add_argument("--queue", required=True, metavar="NAME", help="the queue to poll (it must exist)")
    run.add_argument("--batch-size", type=int, default=10, help="records per invocation at most (10)")
    run.add_argument("--window", type=float, default=0.0, help="batching window in seconds (0)")
    run.add_argument("--timeout", type=float, default=30.0, help="the function timeout in seconds (30)")
    run.add_argument("--wait", type=int, default=20, help="long-poll seconds per receive (20)")
    run.add_argument("--until-empty", action="store_true", help="stop once a receive finds nothing")
    run.add_argument("--endpoint-url", help="SQS endpoint to poll (default: the AWS configuration chain)")
    run.add_argument("--region", help="AWS region (default: the AWS configuration chain)")
    run.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    run.set_defaults(run=_lambda_run)


async def _lambda_run(args: argparse.Namespace) -> int:
    app = _load_app(args.app)
    _configure_logging(args.log_level, wire=False)
    handler = app.lambda_handler()
    poller = App(
        "qfan-lambda-poller", endpoint_url=args.endpoint_url, region=args.region, declare_on_start=False
    )
    queue = poller.queue(args.queue, create=False)
    try:
        async with poller:
            source = EventSource(
                queue,
                poller.connection,
                handler,
                batch_size=args.batch_size,
                window=args.window,
                timeout=args.timeout,
                wait=args.wait,
            )
            stats = await source.run(until_empty=args.until_empty)
    finally:
        await anyio.to_thread.run_sync(handler.close)
    print(
        f"lambda run: {stats.batches} batch(es), {stats.deleted} deleted, {stats.reported} reported, "
        f"{stats.failed_batches} failed as a whole",
        file=sys.stderr,
    )
    return 0
