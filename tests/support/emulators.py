"""The emulators the suite runs against: qfan's own launcher (``qfan/_emulators.py``), one process each.

A separate process (not moto's in-process server, which ``qfan.local()`` uses) so the tests talk to the
emulator over real HTTP exactly as qfan talks to AWS, the emulator's CPU use does not share the test's GIL,
and a crash of the emulator cannot take the test process down. Port races, health checks, the log file and
stopping by pid are the launcher's; this module only names what the suite chooses from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from qfan._emulators import RunningEmulator, free_port, running_process

__all__ = ["EMULATORS", "Emulator", "EmulatorName", "free_port", "running_emulator"]

EmulatorName = Literal["moto", "ministack"]
EMULATORS: tuple[EmulatorName, ...] = ("moto", "ministack")

#: A running emulator process: ``name``, ``endpoint_url``, ``pid``, ``account_id``, ``log_path``, ...
Emulator = RunningEmulator


@contextmanager
def running_emulator(name: EmulatorName, *, timeout: float = 30.0) -> Iterator[Emulator]:
    """Run emulator ``name`` in its own process for the duration of the block, in a private temp dir."""
    if name not in EMULATORS:
        raise ValueError(f"unknown emulator {name!r}; expected one of {EMULATORS}")
    with running_process(name, timeout=timeout) as emulator:
        yield emulator
