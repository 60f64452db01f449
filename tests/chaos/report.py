"""The chaos suite's scale and its summary: one row per scenario, printed at the end and written as JSON.

The scale is ``--chaos-size ci|full`` (else ``$QFAN_CHAOS_SCALE``, else ``ci``): ``ci`` is the reduced run
that README's plain ``python -m pytest`` (and so CI) includes; ``full`` is the size the guarantees are stated
at (10,000-message soak, 200,000-message backlog). The JSON goes to ``$QFAN_CHAOS_REPORT`` if set, else
``chaos-summary.json`` in pytest's base temp directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Scale = Literal["ci", "full"]
SCALES: tuple[Scale, ...] = ("ci", "full")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is at one scale."""

    soak_messages: int
    soak_queues: int
    fault_rate: float
    soak_bound: float  # seconds the soak may take to finish by itself
    offload_messages: int
    crash_messages: int
    crash_kills: int
    fuzz_examples: int
    memory_backlog: int
    memory_window: float  # seconds of sampling the worker's RSS


SIZES: dict[Scale, Sizes] = {
    "ci": Sizes(300, 2, 0.10, 300, 3, 200, 3, 10, 3_000, 12),
    "full": Sizes(10_000, 2, 0.10, 1_200, 20, 3_000, 20, 60, 200_000, 90),
}


@dataclass
class Row:
    """One scenario's outcome (the columns of the summary table, plus details for the JSON)."""

    scenario: str
    messages: int
    faults: int
    lost: int
    duplicated: int
    dead_lettered: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


ROWS: list[Row] = []


def record(row: Row) -> None:
    """Add a scenario's row to the session's summary."""
    ROWS.append(row)


def table(rows: list[Row]) -> str:
    """The summary as a Markdown table."""
    head = "| scenario | messages | faults injected | lost | duplicated | dead-lettered | time (s) |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [
        f"| {r.scenario} | {r.messages:,} | {r.faults:,} | {r.lost} | {r.duplicated} | {r.dead_lettered} "
        f"| {r.seconds:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def transport() -> str:
    """The SQS transport of the suite's apps and workers (``$QFAN_TRANSPORT``, else qfan's default)."""
    return os.environ.get("QFAN_TRANSPORT") or "default"


def write_json(rows: list[Row], path: Path, scale: str) -> None:
    """The rows with their details (fault kinds, the RSS curve) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"scale": scale, "transport": transport(), "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(document, indent=1))
