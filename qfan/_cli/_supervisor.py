"""``qfan run --processes N``: a supervisor that runs N worker processes of one app, one per core.

Each child is ``python -m qfan run ...`` with the same arguments (``--processes`` taken out, a
``--metrics-port P`` turned into ``P + index``), so a child is exactly what a single-process run is. The
supervisor:

- restarts a child that exits unexpectedly, with exponential backoff (0.5 s doubling to 30 s, back to
  0.5 s once a child has lived a minute);
- does not restart a child that exits with code 2 (qfan's error exit: a configuration error, or AWS
  refusing the app) before it has run a minute: it would fail the same way; it stops the others and
  exits 2;
- forwards SIGINT/SIGTERM to every child (each then drains within its ``--drain-timeout``), waits for them
  up to the drain timeout plus a grace period, and kills what is left; a second signal is forwarded too (a
  child stops at once on its second signal);
- exits 0 when every child stopped cleanly, and 1 when one had to be killed or ended with an error. A
  child that exits 0 by itself (a batch run that finished) is not restarted; when all have, so does the
  supervisor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc

CONFIG_ERROR = 2
"""The exit code of ``qfan`` for a configuration error (bad app path, invalid options)."""

_BACKOFF_START, _BACKOFF_MAX, _STABLE_AFTER = 0.5, 30.0, 60.0
_GRACE = 10.0


def processes_option(value: str) -> int:
    """``--processes``: a positive count, or ``auto`` for the number of cores this process may use."""
    if value == "auto":
        return max(
            1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        )
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"--processes takes a positive number or 'auto', got {value!r}")
    return count


def child_argv(argv: Sequence[str], index: int) -> list[str]:
    """The ``qfan`` arguments of child ``index``: ``--processes`` removed, ``--metrics-port`` offset."""
    out: list[str] = []
    items = iter(argv)
    for arg in items:
        name, eq, value = arg.partition("=")
        if name == "--processes":
            if not eq:
                next(items, None)
            continue
        if name == "--metrics-port":
            port = int(value if eq else next(items))
            out += ["--metrics-port", str(port + index)]
            continue
        out.append(arg)
    return out


@dataclass
class _Child:
    index: int
    process: anyio.abc.Process | None = None
    started: float = 0.0
    failures: int = 0  # unexpected exits in a row (reset once a child has lived _STABLE_AFTER)
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Runs ``count`` children of ``command(index)`` until a signal, keeping them alive.

    Args:
        command: the full command line of child ``index``.
        count: how many children.
        drain_timeout: seconds a child gets to drain after SIGTERM (its own ``--drain-timeout``).
        log: where the supervisor's lines go (stderr).
    """

    def __init__(
        self,
        command: Callable[[int], list[str]],
        count: int,
        *,
        drain_timeout: float,
        log: Callable[[str], None],
    ) -> None:
        self._command = command
        self._children = [_Child(i) for i in range(count)]
        self._drain_timeout = drain_timeout
        self._log = log
        self._stopping = False
        self._stopped = anyio.Event()
        self._config_error = False

    async def run(self) -> int:
        """Run until every child has stopped; the exit code (see the module's documentation)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._signals)
            async with anyio.create_task_group() as children:
                for child in self._children:
                    children.start_soon(self._keep, child)
            tg.cancel_scope.cancel()  # every child is done: stop listening for signals
        if self._config_error:
            return CONFIG_ERROR
        clean = all(child.exits and child.exits[-1] in (0, -signal.SIGTERM) for child in self._children)
        return 0 if clean else 1

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Stop: forward ``signum`` to every running child (they drain), and restart none."""
        self._stopping = True
        self._stopped.set()
        for child in self._children:
            if child.process is not None and child.process.returncode is None:
                child.process.send_signal(signum)

    async def _signals(self) -> None:
        async with anyio.create_task_group() as timers:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    first = not self._stopping
                    then = "stopping the worker processes" if first else "forwarding it again (stop at once)"
                    self._log(f"qfan: {signal.Signals(signum).name}: {then}")
                    self.stop()
                    if first:
                        timers.start_soon(self._kill_after, self._drain_timeout + _GRACE)

    async def _kill_after(self, seconds: float) -> None:
        """After ``seconds``, kill every child still running (it did not drain in time)."""
        await anyio.sleep(seconds)
        for child in self._children:
            if child.process is not None and child.process.returncode is None:
                self._log(
                    f"qfan: worker process {child.index} (pid {child.process.pid}) did not stop: killing it"
                )
                child.process.kill()

    async def _keep(self, child: _Child) -> None:
        while not self._stopping:
            child.started = time.monotonic()
            # Its own session: a terminal's Ctrl-C reaches the supervisor only, which forwards one SIGTERM.
            child.process = await anyio.open_process(
                self._command(child.index),
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                start_new_session=True,
            )
            self._log(f"qfan: worker process {child.index} started (pid {child.process.pid})")
            code = await child.process.wait()
            child.exits.append(code)
            if self._stopping:
                break
            if code == 0:
                self._log(f"qfan: worker process {child.index} finished")
                return
            lived = time.monotonic() - child.started
            if code == CONFIG_ERROR and lived < _STABLE_AFTER:
                self._log(f"qfan: worker process {child.index} exited {code} (configuration error): stopping")
                self._config_error = True
                self.stop()
                return
            child.failures = 1 if lived >= _STABLE_AFTER else child.failures + 1
            delay = min(_BACKOFF_MAX, _BACKOFF_START * 2 ** (child.failures - 1))
            self._log(
                f"qfan: worker process {child.index} exited {code} after {lived:.1f}s; "
                f"restarting it in {delay:.1f}s"
            )
            with anyio.move_on_after(delay):
                await self._stopped.wait()
        if child.process is not None and child.process.returncode is None:
            child.exits.append(await child.process.wait())


def supervise(argv: Sequence[str], count: int, drain_timeout: float) -> int:
    """Run ``count`` children of ``qfan <argv>``; the supervisor's exit code."""

    def command(index: int) -> list[str]:
        return [sys.executable, "-m", "qfan", *child_argv(argv, index)]

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    supervisor = Supervisor(command, count, drain_timeout=drain_timeout, log=log)
    return anyio.run(supervisor.run)
