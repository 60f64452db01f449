"""Fixtures of the chaos suite: its scale, its seed, and its own MiniStack (fast enough for big volumes).

The suite uses MiniStack whatever ``--emulator`` says: moto costs O(queue length) per call, far too slow for
10,000-message soaks and 200,000-message backlogs. MiniStack's receive slows down with a big backlog, so the
full-size memory scenario runs on fauxqs (the benchmarks' Node emulator, installed with npm on first use)
when it is available, and says which server it used.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from ..conftest import chaos_scale
from ..support.emulators import Emulator, running_emulator
from .report import SIZES, Scale, Sizes


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> Scale:
    """``ci`` or ``full`` (see ``tests/chaos/report.py``)."""
    return chaos_scale(request.config)


@pytest.fixture(scope="session")
def sizes(scale: Scale) -> Sizes:
    """The scenario sizes at this scale (``$QFAN_CHAOS_FAULT_RATE`` overrides the soak's fault rate)."""
    rate = os.environ.get("QFAN_CHAOS_FAULT_RATE")
    return SIZES[scale] if rate is None else dataclasses.replace(SIZES[scale], fault_rate=float(rate))


@pytest.fixture(scope="session")
def seed() -> int:
    """The fault plans' seed: ``$QFAN_CHAOS_SEED``, else 9 (print it with the failure to replay a run)."""
    return int(os.environ.get("QFAN_CHAOS_SEED", "9"))


@pytest.fixture(scope="session")
def chaos_server() -> Iterator[Emulator]:
    """A MiniStack process of the chaos suite's own."""
    with running_emulator("ministack", timeout=60) as server:
        yield server


@pytest.fixture(scope="session")
def backlog_server(scale: Scale, chaos_server: Emulator) -> Iterator[tuple[str, str]]:
    """``(name, endpoint)`` for the backlog scenario: fauxqs at full size if it runs here, else MiniStack."""
    from benchmarks.servers import ServerUnavailable, running_server  # only the full size needs it

    with ExitStack() as stack:
        if scale == "full" and os.environ.get("QFAN_CHAOS_BACKLOG_SERVER", "fauxqs") == "fauxqs":
            try:
                server = stack.enter_context(running_server("fauxqs", log=lambda _: None))
            except ServerUnavailable:
                pass
            else:
                assert server.endpoint_url is not None
                yield "fauxqs", server.endpoint_url
                return
        yield "ministack", chaos_server.endpoint_url
