"""What a worker consumes, whatever its source: one queue per level, and how the levels share its handlers.

A plain queue is a one-level source; a priority queue has a level per priority. The worker engine and the
scheduler only ever see this shape, so there is one code path for both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

Mode = Literal["weighted", "strict"]
"""How a worker shares its handlers between levels: by weight, or strictly highest first."""
MODES: tuple[Mode, ...] = ("weighted", "strict")

if TYPE_CHECKING:
    from ._queue import Queue


@dataclass(frozen=True, slots=True)
class Levels:
    """The levels of a worker's source, highest priority first.

    Attributes:
        queues: each level's queue, by level name.
        weights: each level's weight (``weighted`` mode), in level order.
        mode: ``weighted`` or ``strict``.
        reserved: slots kept for a level, by level index.
        prioritised: a priority queue (its levels are polled and counted separately), even with one level.
    """

    queues: Mapping[str, Queue[Any]]
    weights: Sequence[float] = (1.0,)
    mode: Mode = "weighted"
    reserved: Mapping[int, int] = field(default_factory=dict)
    prioritised: bool = False
