"""Settling a handled message, decided without I/O: what becomes of it after its handler ran (or could not).

========================================  ===================================================================
outcome                                   action
========================================  ===================================================================
the handler acked it itself               :class:`Settled` (nothing more to do)
returned, or raised ``qfan.Ack``          :class:`Delete`
raised ``qfan.Reject(reason)``            :class:`DeadLetter` ``rejected: <reason>``
raised ``qfan.Retry(delay)``              :class:`RetryAfter` ``delay`` (the backoff's when ``None``)
raised ``qfan.CircuitOpen`` (a ``Retry``:  :class:`RetryAfter` the breaker's remaining cooldown, never
the worker's breaker was open, or this     dead-lettered, even past the attempt limit: the failure was
failure tripped it)                        the breaker's, not the message's
poison: its body cannot be had            :class:`DeadLetter` ``poison message: <error>`` at once, unless
                                          the error is transient (an S3 payload S3 failed to deliver):
                                          then it counts as a failed attempt
raised anything else                      :class:`RetryAfter` the backoff, or after the worker's attempt
                                          limit :class:`DeadLetter` ``failed N times: <type>: <error>``
========================================  ===================================================================

A dead-letter decision on a queue without a dead-letter queue becomes :class:`RetryAfter` the longest
backoff (the message is never dropped), flagged ``undeliverable`` so the executor can say why. ``Release``
(visible again at once) is what the engine does with messages it did not start: stopping, or the later
messages of a FIFO group whose earlier one failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import Ack, MessageError, Reject, Retry
from ._backoff import Backoff


@dataclass(frozen=True, slots=True)
class Settled:
    """The handler already deleted the message (``await message.ack()``)."""


@dataclass(frozen=True, slots=True)
class Delete:
    """Handled: delete it."""


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Make it visible again after ``delay`` seconds.

    Attributes:
        delay: seconds.
        undeliverable: set when the message should have been dead-lettered but has nowhere to go; the
            reason says why.
        reason: the dead-letter reason it would have had.
    """

    delay: int
    undeliverable: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Copy it to the dead-letter queue with ``reason``, then delete it.

    Attributes:
        reason: the ``dead-letter-reason`` attribute.
        error: the exception, whose type becomes ``dead-letter-error``.
    """

    reason: str
    error: BaseException


@dataclass(frozen=True, slots=True)
class Release:
    """Give it back unstarted: visible again at once, its receive not counted as a failure."""


Action = Settled | Delete | RetryAfter | DeadLetter | Release


@dataclass(frozen=True, slots=True)
class SettlePolicy:
    """What a worker's settling depends on.

    Attributes:
        backoff: waits between failed attempts.
        attempts_limit: receives after which a failing message is dead-lettered (``None``: never, the
            queue's redrive policy decides).
        has_dead_letter: whether the queue has a dead-letter queue to copy to.
    """

    backoff: Backoff
    attempts_limit: int | None
    has_dead_letter: bool


def decide(
    outcome: BaseException | None,
    receive_count: int,
    policy: SettlePolicy,
    *,
    poison: bool = False,
    settled: bool = False,
) -> Action:
    """The action for one message (see the module's table).

    Args:
        outcome: what the handler raised (``None``: it returned), or with ``poison`` the error its body
            raised before the handler could run.
        receive_count: how many times SQS has delivered it.
        policy: the worker's settle policy.
        poison: the handler never ran because the body could not be had.
        settled: the handler deleted the message itself.
    """
    if settled:
        return Settled()
    if outcome is None or isinstance(outcome, Ack):
        return Delete()
    if isinstance(outcome, Reject):
        return _dead_letter(f"rejected: {outcome.reason}", outcome, policy)
    if isinstance(outcome, Retry):
        delay = policy.backoff.delay(receive_count) if outcome.delay is None else outcome.delay
        return RetryAfter(delay)
    if poison and isinstance(outcome, MessageError) and not outcome.transient:
        return _dead_letter(f"poison message: {outcome}", outcome, policy)
    limit = policy.attempts_limit
    if limit is not None and receive_count >= limit:
        reason = f"failed {receive_count} times: {type(outcome).__name__}: {outcome}"
        return _dead_letter(reason, outcome, policy)
    return RetryAfter(policy.backoff.delay(receive_count))


def _dead_letter(reason: str, error: BaseException, policy: SettlePolicy) -> DeadLetter | RetryAfter:
    if policy.has_dead_letter:
        return DeadLetter(reason, error)
    return RetryAfter(round(policy.backoff.maximum), undeliverable=True, reason=reason)
