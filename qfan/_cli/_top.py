"""``qfan top``: a live view of queues' backlog, in flight, delayed and dead-letter depth, with rates.

Rows come from ``GetQueueAttributes`` (the queue's control plane); a queue's dead-letter queue is found
from its ``RedrivePolicy``. SQS reports no age of the oldest message (CloudWatch does), so ``oldest_age``
is ``null`` unless the server says ``ApproximateAgeOfOldestMessage``. ``--once --json`` prints one sample.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import anyio

from .._app._app import App
from .._exceptions import QfanError
from .._resources._queue import Queue

_COLUMNS = ("queue", "visible", "in_flight", "delayed", "dlq", "dlq_depth", "oldest_age", "rate")


class Sampler:
    """Reads each watched queue (and its dead-letter queue) and turns two readings into rates."""

    def __init__(self, app: App, names: list[str]) -> None:
        self._app = app
        self._queues: dict[str, Queue[Any]] = {}
        for name in names:
            self._queues[name] = app.queues.get(name) or app.queue(name, create=False)
        self._last: dict[str, tuple[float, int]] = {}

    async def sample(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [{} for _ in self._queues]

        async def read(index: int, name: str, queue: Queue[Any]) -> None:
            rows[index] = await self._row(name, queue)

        async with anyio.create_task_group() as tg:
            for index, (name, queue) in enumerate(self._queues.items()):
                tg.start_soon(read, index, name, queue)
        return rows

    async def _row(self, name: str, queue: Queue[Any]) -> dict[str, Any]:
        try:
            attributes = await queue.attributes()
        except QfanError as exc:
            return {"queue": name, "error": f"{type(exc).__name__}: {exc}"}
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        row: dict[str, Any] = {
            "queue": name,
            "visible": visible,
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
            "dlq": None,
            "dlq_depth": None,
            "oldest_age": _int_or_none(attributes.get("ApproximateAgeOfOldestMessage")),
            "rate": None,
        }
        dlq = _dead_letter_name(attributes.get("RedrivePolicy"))
        if dlq is not None:
            row["dlq"] = dlq
            target = self._app.queues.get(dlq) or self._app.queue(dlq, create=False)
            with suppress(QfanError):
                row["dlq_depth"] = int((await target.attributes()).get("ApproximateNumberOfMessages", 0))
        now = time.monotonic()
        last = self._last.get(name)
        if last is not None and now > last[0]:
            row["rate"] = round((visible - last[1]) / (now - last[0]), 2)  # backlog growth, messages/s
        self._last[name] = (now, visible)
        return row


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


def _dead_letter_name(policy: str | None) -> str | None:
    if not policy:
        return None
    try:
        arn = json.loads(policy).get("deadLetterTargetArn", "")
    except (ValueError, AttributeError):
        return None
    return str(arn).rpartition(":")[2] or None


def watched_queues(app: App | None, names: list[str]) -> list[str]:
    """The queues named on the command line, else the app's (dead-letter queues show in their source's
    row, so they get no row of their own unless named)."""
    if names or app is None:
        return names
    targets = {q.dead_letter.name for q in app.queues.values() if q.dead_letter is not None}
    return [name for name in app.queues if name not in targets]


async def top(app: App, names: list[str], args: argparse.Namespace) -> int:
    """Print one sample (``--once``) or refresh a live table until ``q`` or Ctrl-C."""
    async with app:
        sampler = Sampler(app, names)
        if args.once:
            rows = await sampler.sample()
            if args.json:
                print(json.dumps({"time": time.time(), "queues": rows}))
            else:
                _print_table(rows)
            return 0 if all("error" not in row for row in rows) else 1
        return await _live(sampler, args.interval)


def _table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"qfan top · {time.strftime('%H:%M:%S')} · q to quit")
    for column in _COLUMNS:
        table.add_column(column.replace("_", " "), justify="left" if column in ("queue", "dlq") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["queue"], f"[red]{row['error']}[/red]")
        else:
            table.add_row(*("-" if row.get(c) is None else str(row[c]) for c in _COLUMNS))
    return table


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console

    Console().print(_table(rows))


async def _live(sampler: Sampler, interval: float) -> int:
    """Refresh in place on a terminal; elsewhere (a pipe, a file) print one table per sample."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    quit_ = anyio.Event()
    first = _table(await sampler.sample())
    view = (
        Live(first, console=console, auto_refresh=False) if console.is_terminal else _Printer(console, first)
    )
    with _keys() as keys, view as live:
        async with anyio.create_task_group() as tg:
            if keys is not None:

                async def watch_keys() -> None:
                    while True:
                        key = await anyio.to_thread.run_sync(keys.read, 1, abandon_on_cancel=True)
                        if key in ("q", "Q", ""):
                            quit_.set()
                            return

                tg.start_soon(watch_keys)

            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        quit_.set()
                        return

            tg.start_soon(watch_signals)
            while not quit_.is_set():
                with anyio.move_on_after(interval):
                    await quit_.wait()
                if not quit_.is_set():
                    live.update(_table(await sampler.sample()), refresh=True)
            tg.cancel_scope.cancel()
    return 0


class _Printer:
    """``Live``'s interface for output that is not a terminal: every update printed after the last."""

    def __init__(self, console: Any, first: Any) -> None:
        self._console = console
        console.print(first)

    def __enter__(self) -> _Printer:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def update(self, table: Any, refresh: bool = False) -> None:
        self._console.print(table)


@contextmanager
def _keys() -> Iterator[Any]:
    """stdin in cbreak mode (single keys, no echo) while it is a terminal; ``None`` otherwise."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    saved = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin)
        yield sys.stdin
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


async def run_top(args: argparse.Namespace, load_app: Any) -> int:
    """The ``qfan top`` command: an app's queues (``MODULE:APP``) or the ``--queue`` names."""
    if args.app:
        app: App = load_app(args.app)
    else:
        app = App("qfan-top", endpoint_url=args.endpoint_url, region=args.region)
    names = watched_queues(app if args.app else None, list(args.queue))
    if not names:
        print("qfan top: no queues: give MODULE:APP or --queue NAME", file=sys.stderr)
        return 2
    return await top(app, names, args)
