"""``qfan archive QUEUE --bucket B``: a queue to S3 in date partitions, with progress lines on stdout."""

from __future__ import annotations

import argparse
import re

import anyio

from .._app._app import App
from .._archive import Archiver, S3Archive
from ._commands import _configure_logging, run_until_signalled

_SIZE = re.compile(r"(\d+)\s*(|B|KiB|K|MiB|M)", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kib": 1024, "k": 1024, "mib": 1024 * 1024, "m": 1024 * 1024}


def byte_size(text: str) -> int:
    """``5242880``, ``512KiB`` or ``5MiB`` (K and M are binary too, as Firehose's MiB)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"a size looks like 5242880, 512KiB or 5MiB, not {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The ``archive`` sub-command's arguments (the caller adds the connection options)."""
    archive = commands.add_parser(
        "archive", help="archive a queue to S3 in YYYY/MM/dd/HH partitions (Firehose's delivery to S3)"
    )
    archive.add_argument("queue", metavar="QUEUE")
    archive.add_argument("--bucket", required=True, help="the bucket objects are written to")
    archive.add_argument("--prefix", default="", help="key prefix of data objects, e.g. datos/")
    archive.add_argument(
        "--error-prefix", default="errors/", help="key prefix of records that cannot be archived (errors/)"
    )
    archive.add_argument(
        "--max-bytes", type=byte_size, default="5MiB", help="buffer size, up to 128MiB (default 5MiB)"
    )
    archive.add_argument(
        "--max-interval", type=float, default=300.0, help="buffer age in seconds, up to 900 (default 300)"
    )
    archive.add_argument("--max-records", type=int, default=10_000, help="messages per buffer (10000)")
    archive.add_argument("--gzip", action="store_true", help="write .jsonl.gz objects")
    archive.add_argument(
        "--key-template",
        default="{yyyy}/{MM}/{dd}/{HH}/",
        help="partition path after the prefix: {yyyy} {MM} {dd} {HH}, {attr:NAME}, {field:PATH}",
    )
    archive.add_argument(
        "--no-create-bucket", action="store_true", help="do not create the bucket when it is missing"
    )
    archive.add_argument(
        "--progress-interval", type=float, default=10.0, help="seconds between progress lines (10)"
    )
    archive.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds to write the open buffer on shutdown"
    )
    archive.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    archive.set_defaults(run=run_archive)
    return archive


async def run_archive(args: argparse.Namespace) -> int:
    """Archive until SIGINT/SIGTERM; the open buffer is written (and its messages deleted) on the way out."""
    _configure_logging(args.log_level, wire=False)
    app = App("qfan-archive", endpoint_url=args.endpoint_url, region=args.region)
    queue = app.queue(args.queue, create=False)
    sink = S3Archive(
        args.bucket,
        prefix=args.prefix,
        error_prefix=args.error_prefix,
        max_bytes=args.max_bytes,
        max_interval=args.max_interval,
        max_records=args.max_records,
        compression="gzip" if args.gzip else None,
        key_template=args.key_template,
        declare_bucket=not args.no_create_bucket,
    )
    archiver = app.archive(queue, sink=sink)
    print(f"qfan: archiving {queue.name} to s3://{args.bucket}/{args.prefix}", flush=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_progress, archiver, args.progress_interval)
        code = await run_until_signalled(app, None, None, args.drain_timeout)
        tg.cancel_scope.cancel()
    print(f"qfan: stopped: {archiver.stats.summary()}", flush=True)
    return code


async def _progress(archiver: Archiver, interval: float) -> None:
    """A line per interval: objects, records, bytes written, error records, buffered, lag."""
    seen = 0
    while True:
        await anyio.sleep(interval)
        stats = archiver.stats
        total = stats.objects + stats.error_objects
        recent = list(stats.recent_keys)
        for key in recent[len(recent) - min(total - seen, len(recent)) :] if total > seen else ():
            print(f"wrote s3://{archiver.sink.bucket}/{key}", flush=True)
        seen = total
        print(stats.summary(), flush=True)
