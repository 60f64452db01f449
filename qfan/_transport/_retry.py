"""Retry policy for transient failures (throttling, 5xx, connection errors), built on tenacity.

botocore's own retries are switched off (``total_max_attempts=1``) so that the two never multiply: this
policy is the only one, and it also covers batch entries that failed on the server's side.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from .._exceptions import ConfigError, QfanError
from ._errors import error_for_code
from ._types import BatchResult

T = TypeVar("T")
S = TypeVar("S")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


E = TypeVar("E", bound=_HasId)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, QfanError) and exc.transient


class _EntriesToRetry(QfanError):
    """Raised internally when some batch entries failed transiently and should be sent again."""

    transient = True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with full jitter, bounded.

    Attributes:
        attempts: total tries per call, including the first (1 disables retrying).
        initial_wait: the backoff multiplier in seconds; waits grow as ``initial_wait * 2**n``, jittered.
        max_wait: the longest single wait in seconds.
    """

    attempts: int = 6
    initial_wait: float = 0.05
    max_wait: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.initial_wait < 0 or self.max_wait < self.initial_wait:
            raise ConfigError(
                "RetryPolicy needs 0 <= initial_wait <= max_wait, "
                f"got initial_wait={self.initial_wait}, max_wait={self.max_wait}"
            )

    def retrying(self, *, after_first: bool = False) -> AsyncRetrying:
        """A fresh tenacity controller for one logical call (``after_first``: for the attempts after a
        first one that failed, with the backoff carrying on from there)."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts - 1 if after_first else self.attempts),
            wait=wait_random_exponential(
                multiplier=self.initial_wait * (2 if after_first else 1), max=self.max_wait
            ),
            retry=retry_if_exception(_is_transient),
            sleep=anyio.sleep,
            reraise=True,
        )

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` until it succeeds, fails permanently, or the attempts are used up.

        The first attempt runs outside tenacity (most calls succeed at once, and a retry controller per call
        costs more than the call's own bookkeeping); a transient failure hands the rest to tenacity.
        """
        try:
            return await fn()
        except QfanError as exc:
            if not exc.transient or self.attempts == 1:
                raise
        await anyio.sleep(random.uniform(0, min(self.max_wait, self.initial_wait)))
        async for attempt in self.retrying(after_first=True):
            with attempt:
                return await fn()
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def call_batch(
        self,
        operation: str,
        call: Callable[[Sequence[E]], Awaitable[BatchResult[S]]],
        entries: Sequence[E],
    ) -> tuple[list[S], dict[str, QfanError]]:
        """Run a batch call, retrying the whole call on transient errors and transient entries alone.

        Returns what succeeded and, for every entry that did not, the error it ended with: an entry is
        never dropped without an outcome.
        """
        by_id = {entry.id: entry for entry in entries}
        pending: list[E] = list(entries)
        succeeded: list[S] = []
        errors: dict[str, QfanError] = {}
        retry_errors: dict[str, QfanError] = {}

        async def attempt() -> None:
            nonlocal pending, retry_errors
            result = await call(pending)
            succeeded.extend(result.succeeded)
            retry_errors = {}
            for failure in result.failed:
                error = error_for_code(
                    failure.code,
                    failure.message,
                    operation=operation,
                    sender_fault=failure.sender_fault,
                    status=None if failure.sender_fault else 500,
                )
                (retry_errors if error.transient else errors)[failure.id] = error
            pending = [by_id[entry_id] for entry_id in retry_errors]
            if pending:
                raise _EntriesToRetry(operation)

        try:
            await self.call(attempt)
        except _EntriesToRetry:
            errors.update(retry_errors)
        except QfanError as exc:
            errors.update(dict.fromkeys((entry.id for entry in pending), exc))
        return succeeded, errors
