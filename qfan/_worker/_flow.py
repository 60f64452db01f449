"""Flow control: a rate limit on handler starts, and a circuit breaker that stops a failing worker.

Both are worker middlewares (around the handler) with a pure core driven by an injected clock, unit-tested
as tables. Pass one object to several workers to share it across an app.

**RateLimit** is a token bucket: ``burst`` tokens, refilled at ``per_second``. A handler start takes a token,
or reserves the next one and waits for it; the message waits held (its visibility extended by the
heartbeat), the worker's slots fill, and receiving pauses: nothing is received only to time out.

**CircuitBreaker**::

    closed --(failures within window)--> open --(cooldown)--> half-open --(probe succeeds)--> closed
                                          ^------------------------------(probe fails)--------'

While open the worker receives nothing; a message that starts anyway (already held), and the one whose
failure tripped the breaker, is given back for later (``qfan.CircuitOpen``, a ``Retry``: never counted
towards dead-lettering by the worker). Half-open, one handler runs as a probe while the others wait for
its outcome. ``qfan.Retry``/``Reject``/``Ack`` are the handler's decisions, not failures.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import anyio

from .._exceptions import CircuitOpen, ConfigError, HandlerOutcome
from .._pipeline._hooks import CallNext
from .._pipeline._message import Message

Clock = Callable[[], float]
BreakerState = Literal["closed", "open", "half_open"]

_PROBE_POLL = 0.05  # how often messages waiting on a half-open breaker's probe look again


class RateLimit:
    """At most ``per_second`` handler starts per second on average, ``burst`` at once after a quiet spell.

    Args:
        per_second: the sustained rate (> 0).
        burst: the bucket's size (>= 1).
        clock: monotonic seconds (tests inject their own).
    """

    def __init__(self, per_second: float, burst: int = 1, *, clock: Clock = time.monotonic) -> None:
        if not per_second > 0:
            raise ConfigError(f"RateLimit: per_second must be > 0, got {per_second!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigError(f"RateLimit: burst must be an int >= 1, got {burst!r}")
        self.per_second = float(per_second)
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> float:
        """Take a token: 0.0 when one was there, else the seconds until the one reserved for the caller."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    async def __call__(self, message: Message[Any], call_next: CallNext) -> Any:
        wait = self.take()
        if wait > 0:
            await anyio.sleep(wait)
        return await call_next()


class CircuitBreaker:
    """Opens after ``failures`` handler failures within ``window`` seconds, for ``cooldown`` seconds.

    Args:
        failures: failures that open it (>= 1).
        window: seconds over which they are counted.
        cooldown: seconds it stays open before a probe is let through.
        clock: monotonic seconds (tests inject their own).
    """

    def __init__(
        self, failures: int, window: float, cooldown: float, *, clock: Clock = time.monotonic
    ) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigError(f"CircuitBreaker: failures must be an int >= 1, got {failures!r}")
        if not window > 0 or not cooldown > 0:
            raise ConfigError("CircuitBreaker: window and cooldown must be > 0 seconds")
        self.failures = failures
        self.window = float(window)
        self.cooldown = float(cooldown)
        self.clock = clock
        self.state: BreakerState = "closed"
        self.opened = 0  # times it opened
        self._recent: deque[float] = deque()
        self._open_until = 0.0
        self._probing = False

    def blocked_for(self) -> float:
        """Seconds until the breaker lets anything through (0: it does now); half-opens when cooled down."""
        if self.state == "open":
            left = self._open_until - self.clock()
            if left > 0:
                return left
            self.state, self._probing = "half_open", False
        if self.state == "half_open" and self._probing:
            return _PROBE_POLL
        return 0.0

    def start(self) -> float | None:
        """May a handler start? ``None``: yes (half-open: as the probe); else how long it is open for
        (0.0 while a probe is running: wait for its outcome)."""
        blocked = self.blocked_for()
        if self.state == "open":
            return blocked
        if self.state == "half_open":
            if self._probing:
                return 0.0
            self._probing = True
        return None

    def succeeded(self) -> None:
        """A handler returned (or settled its message on purpose)."""
        if self.state == "half_open":
            self.state, self._probing = "closed", False
            self._recent.clear()

    def failed(self) -> bool:
        """A handler raised; True when the breaker is open now (the failure tripped it, or it was)."""
        now = self.clock()
        if self.state == "open":  # a run that started before it opened: already counted out
            return True
        if self.state == "closed":
            self._recent.append(now)
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            if len(self._recent) < self.failures:
                return False
        self.state, self._probing = "open", False
        self._open_until = now + self.cooldown
        self._recent.clear()
        self.opened += 1
        return True

    async def wait_closed(self) -> None:
        """Return once the breaker lets handlers through again (receivers wait here while it is open)."""
        while True:  # a poll: it opens and closes by the clock, not by an event
            blocked = self.blocked_for()
            if blocked <= 0:
                return
            await anyio.sleep(blocked)

    async def __call__(self, message: Message[Any], call_next: CallNext) -> Any:
        while (blocked := self.start()) is not None:
            if blocked > 0:
                raise CircuitOpen(delay=math.ceil(blocked))
            await anyio.sleep(_PROBE_POLL)
        try:
            result = await call_next()
        except HandlerOutcome:
            self.succeeded()
            raise
        except Exception as exc:
            if self.failed():
                raise CircuitOpen(delay=math.ceil(self.blocked_for())) from exc
            raise
        self.succeeded()
        return result
