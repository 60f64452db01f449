"""Delays beyond SQS's 15 minutes: a due time carried in an attribute, and the message re-queued in hops.

Sending (outbound): a delay longer than one hop (15 minutes, SQS's ``DelaySeconds`` maximum) is sent with
``DelaySeconds`` = one hop and a ``qfan-due-at`` attribute holding the due time (epoch seconds).

Receiving (inbound, before anything else happens to the message, its S3 payload is not even fetched): a
message whose due time has not come is sent again, exactly as it arrived (body, or offload pointer, and
attributes), with the next hop's delay, and the original is deleted, only after the copy was sent. Handlers
never see it before it is due, the copy starts with a fresh receive count, and nothing lives outside SQS, so
restarts do not matter. Each hop costs one receive, one send and one delete.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .._exceptions import ConfigError
from .._transport import ReceiptEntry, ReceivedMessage, RetryingSqs, SendEntry
from .._wire._limits import MAX_DELAY

logger = logging.getLogger("qfan")

DUE_AT = "qfan-due-at"
"""The attribute holding a long-delayed message's due time (``Number``, epoch seconds)."""

Delay = int | timedelta


@dataclass(frozen=True)
class LongDelays:
    """How long delays travel: ``App(long_delays=qfan.LongDelays(hop=...))``.

    Attributes:
        hop: the longest ``DelaySeconds`` of one hop (1-900 s; SQS's maximum, 900, by default). Shorter
            hops cost more requests; tests use them to see several hops quickly.
        clock: the wall clock due times are set and compared on (epoch seconds); tests may speed it up.
    """

    hop: int = MAX_DELAY
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if isinstance(self.hop, bool) or not 1 <= self.hop <= MAX_DELAY:
            raise ConfigError(f"LongDelays: hop must be 1..{MAX_DELAY} seconds, got {self.hop!r}")

    def schedule(self, delay: Delay | None, delay_until: datetime | None) -> tuple[int | None, float | None]:
        """``DelaySeconds`` of the first hop, and the due time when one hop is not enough."""
        if delay is not None and delay_until is not None:
            raise ConfigError("give delay or delay_until, not both")
        if delay_until is not None:
            if delay_until.tzinfo is None:
                raise ConfigError("delay_until must be a timezone-aware datetime")
            seconds = max(0.0, delay_until.timestamp() - self.clock())
        elif isinstance(delay, timedelta):
            seconds = delay.total_seconds()
        elif delay is None:
            return None, None
        elif isinstance(delay, int) and not isinstance(delay, bool):
            seconds = delay
        else:
            seconds = -1
        if seconds < 0:
            raise ConfigError(f"delay must be a non-negative int of seconds or a timedelta, got {delay!r}")
        if seconds <= self.hop:
            return math.ceil(seconds), None
        return self.hop, self.clock() + seconds

    def next_hop(self, due_at: float) -> int | None:
        """The delay of the next hop of a message due at ``due_at``; ``None`` when it is due."""
        remaining = due_at - self.clock()
        return None if remaining <= 0 else min(self.hop, max(1, math.ceil(remaining)))


def due_time(message: ReceivedMessage) -> float | None:
    """A received message's due time, when it carries one (a malformed one counts as due)."""
    attribute = message.attributes.get(DUE_AT)
    if attribute is None or attribute.string_value is None:
        return None
    try:
        return float(attribute.string_value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Postponer:
    """Re-queues the not-yet-due messages of one queue's receives (standard queues only).

    Attributes:
        sqs: the connection's SQS planes.
        queue_url: the queue they came from, and go back to.
        delays: hop length and clock.
    """

    sqs: RetryingSqs
    queue_url: str
    delays: LongDelays

    async def due(self, received: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        """The messages that are due; the others are sent again with their next hop, then deleted."""
        due: list[ReceivedMessage] = []
        later: list[tuple[ReceivedMessage, int]] = []
        for message in received:
            due_at = due_time(message)
            hop = None if due_at is None else self.delays.next_hop(due_at)
            if hop is None:
                due.append(message)
            else:
                later.append((message, hop))
        if later:
            await self._requeue(later)
        return due

    async def _requeue(self, later: list[tuple[ReceivedMessage, int]]) -> None:
        entries = [SendEntry(str(i), m.body, m.attributes, hop) for i, (m, hop) in enumerate(later)]
        sent, errors = await self.sqs.send_batch(self.queue_url, entries)
        for entry_id, error in errors.items():  # it stays in flight, and comes back to be tried again
            logger.warning("long delay: re-queueing %s failed: %s", later[int(entry_id)][0].message_id, error)
        receipts = [ReceiptEntry(ok.id, later[int(ok.id)][0].receipt_handle) for ok in sent]
        if receipts:
            _, failed = await self.sqs.delete_batch(self.queue_url, receipts)
            for entry_id, error in failed.items():  # the copy is on its way: this one comes back once more
                original = later[int(entry_id)][0].message_id
                logger.warning("long delay: deleting %s failed: %s", original, error)
