"""Backoff between a failed message's attempts, applied through its visibility timeout."""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, wait_exponential, wait_random

from .._exceptions import ConfigError
from .._wire._limits import MAX_VISIBILITY


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter (tenacity's wait strategies) by receive count.

    The n-th failed attempt makes the message visible again after about ``initial * 2**(n-1)`` seconds
    plus up to ``jitter`` seconds, capped at ``maximum``.

    Attributes:
        initial: seconds before the second attempt.
        maximum: the longest wait in seconds (at most 12 h, SQS's visibility limit).
        jitter: the random extra, in seconds.
    """

    initial: float = 1.0
    maximum: float = 900.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.initial <= self.maximum <= MAX_VISIBILITY or self.jitter < 0:
            raise ConfigError(
                f"Backoff needs 0 <= initial <= maximum <= {MAX_VISIBILITY} and jitter >= 0, got {self}"
            )

    def delay(self, attempt: int) -> int:
        """Whole seconds to wait after failed attempt number ``attempt`` (1 = the first)."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempt)
        wait = wait_exponential(multiplier=self.initial, max=self.maximum) + wait_random(0, self.jitter)
        return min(MAX_VISIBILITY, round(min(wait(state), self.maximum)))
