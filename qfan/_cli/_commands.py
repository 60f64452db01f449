"""The commands of the ``qfan`` command line, one coroutine each, and what they share."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .._app._app import App
from .._demo import run_demo
from .._emulators import running_in_process, running_process
from .._exceptions import ConfigError, QfanError
from .._pipeline._offload import Offload
from .._resources._redrive import move_messages, redrive
from .._telemetry import MetricsServer, Telemetry, install_prometheus
from .._transport import install_redaction, register_secret

_json = msgspec.json.Encoder()

# How MODULE:APP is found, for the help of the commands that take one (see _current_directory_first).
_IMPORT = (
    "MODULE is imported with the current directory first on sys.path (as python -m does) for that import "
    "only; a top-level module first imported later must be installed or on PYTHONPATH"
)

# The loggers that write requests and answers to the log at DEBUG: headers, canonical requests, bodies.
_WIRE_LOGGERS = ("botocore", "aiobotocore", "urllib3", "aiohttp")


def _app(args: argparse.Namespace) -> App:
    return App("qfan-cli", endpoint_url=args.endpoint_url, region=args.region)


def _attribute(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"attribute must look like NAME=VALUE, got {text!r}")
    return name, value


async def _send(args: argparse.Namespace) -> int:
    app = _app(args)
    queue = app.queue(args.queue, create=args.create)
    body: Any = msgspec.json.decode(args.body) if args.json else args.body
    async with app:
        message_id = await queue.send(
            body,
            group_id=args.group_id,
            dedup_id=args.dedup_id,
            delay=args.delay,
            attributes=dict(args.attribute),
        )
    print(message_id)
    return 0


async def _receive(args: argparse.Namespace) -> int:
    app = _app(args)
    offload = None
    if args.offload_bucket:  # read-only use of the buckets: never create one, delete payloads only on --ack
        (first, _, inline), *others = (entry.partition("/") for entry in args.offload_bucket)
        offload = Offload(
            first,
            prefix=inline or args.offload_prefix,
            allowed_buckets=[bucket + sep + prefix for bucket, sep, prefix in others],
            declare_bucket=False,
            delete_payload_on_ack=args.ack,
        )
    elif args.offload_prefix:
        raise ConfigError("--offload-prefix needs --offload-bucket")
    queue = app.queue(args.queue, create=False, offload=offload)
    async with app:
        remaining = args.n
        while remaining > 0:
            messages = await queue.receive(min(remaining, 10), wait=args.wait)
            if not messages:
                break
            for message in messages:
                try:
                    body: Any = message.body
                except QfanError as exc:
                    body = {"error": str(exc), "raw_body": message.raw_body}
                record = {
                    "message_id": message.message_id,
                    "body": body,
                    "attributes": message.attributes,
                    "receive_count": message.receive_count,
                    "group_id": message.group_id,
                }
                if message.payload is not None:
                    record["payload"] = f"s3://{message.payload.bucket}/{message.payload.key}"
                print(_json.encode(record).decode())
                if args.ack:
                    await message.ack()
            remaining -= len(messages)
    return 0


async def _demo(args: argparse.Namespace) -> int:
    def log(line: str) -> None:
        print(line, flush=True)

    async def run(app: App, measured: str, tag: str) -> bool:
        started = time.perf_counter()
        ok = await run_demo(
            app, messages=args.messages, groups=args.groups, log=log, measured=measured, tag=tag
        )
        log(f"demo {'passed' if ok else 'FAILED'} in {time.perf_counter() - started:.1f}s")
        return ok

    if args.endpoint_url:
        log(f"running against {args.endpoint_url}")
        return 0 if await run(_app(args), f"qfan against {args.endpoint_url}", "") else 1
    name = args.emulator or ("ministack" if importlib.util.find_spec("ministack") else "moto")
    # MiniStack answers a call in a few milliseconds, as a process of its own; moto, in this process,
    # spends tens of milliseconds a call, growing with the queue's length.
    with running_in_process() if name == "moto" else running_process("ministack") as emulator:
        where = "in this process" if emulator.pid is None else f"process {emulator.pid}"
        log(f"embedded emulator ({emulator.name}, {where}) listening on {emulator.endpoint_url}")
        app = App(
            "qfan-demo",
            endpoint_url=emulator.endpoint_url,
            region=emulator.region,
            access_key_id="testing",
            secret_access_key="testing",
        )
        measured = f"qfan with the {emulator.name} emulator on this machine, not with AWS"
        return 0 if await run(app, measured, "(emulator)") else 1


def _load_app(target: str) -> App:
    """Import ``module:attribute`` and return the App.

    The module is imported as ``python -m`` would find it: the current directory first on ``sys.path``, for
    that import only (:func:`_current_directory_first`).
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"expected MODULE:APP (e.g. myservice.workers:app), got {target!r}")
    try:
        with _current_directory_first():
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise ConfigError(f"{target!r} is not a qfan.App (got {type(app).__name__})")
    return app


@contextmanager
def _current_directory_first() -> Iterator[None]:
    """The current directory first on ``sys.path`` for the block, and taken off again after it.

    Only while the app's module is imported: left there, it would shadow every module imported later (a
    ``queue.py`` or ``logging.py`` in the directory a worker was started from would replace the standard
    library's). Only the one entry added is removed, so whatever the imported code itself did to
    ``sys.path`` stays. Under ``python -m qfan`` the directory is already there and nothing changes.
    """
    directory = os.getcwd()
    if directory in sys.path or "" in sys.path:
        yield
        return
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        sys.path.remove(directory)


def _configure_logging(level: str, *, wire: bool) -> None:
    """Log to stderr at ``level``, every record scrubbed of credentials; the wire loggers at INFO or above
    unless ``wire``.

    Wire logging at DEBUG is botocore's dump of every request (signed headers, session token, canonical
    request, signature) and answer (message bodies): too much and too sensitive for an ordinary DEBUG run.
    """
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    # Also the handlers the app's module may have set up on import (basicConfig then adds none).
    for handler in root.handlers:
        install_redaction(handler)
    # The secrets this process can see without asking AWS. The app's explicit ones registered themselves
    # (ConnectionSettings); those the AWS chain resolves later are the transport's to register.
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        register_secret(os.environ.get(name))
    if not wire and root.getEffectiveLevel() < logging.INFO:
        for name in _WIRE_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)


async def _run(args: argparse.Namespace) -> int:
    if args.metrics_port is not None:
        install_prometheus()  # before the app opens: it registers telemetry when it finds the provider
    app = _load_app(args.app)
    _configure_logging(args.log_level, wire=args.log_wire)
    if args.backlog_interval != 60.0:
        app.add_hooks(Telemetry(backlog_interval=args.backlog_interval))
    ready_file = Path(args.ready_file) if args.ready_file else None
    with ExitStack() as stack:
        if args.metrics_port is not None:
            server = stack.enter_context(MetricsServer(args.metrics_port, lambda: app.ready))
            logging.getLogger("qfan").info("metrics on http://0.0.0.0:%d/metrics", server.port)
        return await run_until_signalled(
            app,
            args.worker or None,
            args.concurrency,
            args.drain_timeout,
            exit_when_idle=args.exit_when_idle,
            ready_file=ready_file,
        )


async def run_until_signalled(
    app: App,
    workers: list[str] | None,
    concurrency: int | None,
    drain_timeout: float,
    *,
    exit_when_idle: float | None = None,
    ready_file: Path | None = None,
) -> int:
    """Run the app's workers; the first SIGINT/SIGTERM stops them gracefully, a second at once.

    ``ready_file`` is created once the app is ready and removed on the way out; ``exit_when_idle`` stops
    the run once every worker has held nothing for that many seconds.
    """
    try:
        async with anyio.create_task_group() as tg:

            async def on_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        if app.stopping:
                            print("qfan: second signal, stopping at once", file=sys.stderr, flush=True)
                            tg.cancel_scope.cancel()
                            return
                        print(
                            f"qfan: {signal.Signals(signum).name}: stopping gracefully",
                            file=sys.stderr,
                            flush=True,
                        )
                        app.stop()

            tg.start_soon(on_signals)
            if ready_file is not None:
                tg.start_soon(_mark_ready, app, ready_file)
            await app.run(
                workers=workers,
                concurrency=concurrency,
                drain_timeout=drain_timeout,
                exit_when_idle=exit_when_idle,
            )
            tg.cancel_scope.cancel()
    finally:
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)  # noqa: ASYNC240 - one small unlink on the way out
    return 0


async def _mark_ready(app: App, path: Path) -> None:
    """Create ``path`` once the app's workers are ready (a readiness probe can test for the file)."""
    while not app.ready:  # noqa: ASYNC110 - a property, checked a few times a second until it holds
        await anyio.sleep(0.1)
    await anyio.Path(path).write_text(f"{os.getpid()}\n")


async def _declare(args: argparse.Namespace) -> int:
    app = _load_app(args.app)
    app.declare_on_start = False
    async with app:
        items = await app.plan()
        for item in items:
            print(item.line())
        conflicts = [item for item in items if item.action == "conflict"]
        changes = [item for item in items if item.action in ("create", "update")]
        if conflicts:
            print(
                f"{len(conflicts)} conflict(s): change the declarations (nothing was applied)",
                file=sys.stderr,
            )
            return 1
        if args.dry_run:
            print(f"dry run: {len(changes)} change(s) planned, nothing applied")
            return 0
        await app.declare()
    print(f"applied {len(changes)} change(s)")
    return 0


async def _sweep(args: argparse.Namespace) -> int:
    async with _app(args) as app:
        swept = await app.sweep_reply_queues(args.idle)
    for url in swept:
        print(f"deleted {url}")
    print(f"swept {len(swept)} reply queue(s) idle for more than {args.idle:g} s")
    return 0


async def _redrive(args: argparse.Namespace) -> int:
    app = _app(args)
    dead = app.queue(args.queue, create=False)
    target = app.queue(args.to, create=False) if args.to else None
    async with app:
        if target is not None:
            moved = await move_messages(dead, target, limit=args.limit)
            print(f"moved {moved} messages from {args.queue} to {target.name}")
            return 0

        def log(line: str) -> None:
            print(line, flush=True)

        counts = await redrive(
            dead, lambda name: app.queue(name, create=False), log=log, limit=args.limit, poll=args.poll
        )
    print(f"moved {sum(counts.values())} messages from {args.queue} back to their source queues")
    return 0


async def _local(args: argparse.Namespace) -> int:
    with running_in_process(port=args.port) as emulator:
        print(f"# qfan embedded emulator (moto) on {emulator.endpoint_url}; Ctrl-C stops it")
        print("# point qfan, boto3 or the AWS CLI at it with:")
        for name, value in emulator.environment.items():
            print(f"export {name}={value}")
        sys.stdout.flush()
        await anyio.sleep_forever()
    return 0  # pragma: no cover - sleep_forever only ends by cancellation
