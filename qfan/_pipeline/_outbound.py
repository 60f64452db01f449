"""The one way a message leaves: prepare -> offload -> coalesce -> send -> verify -> a result per message.

Queues and topics send through an :class:`Outbound` each; forwarding (and dead-lettering, redrive) sends
prepared copies through the target queue's; request/response replies use the same stages (``prepare``,
``fit``, ``verify_sent``) for a reply address. What differs between SQS and SNS is only the batch call,
:func:`sqs_batches` or :func:`sns_batches`. :class:`~qfan._hooks.PipelineHooks` see every message before it
is encoded and every result after it is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypedDict, TypeVar, Unpack

import anyio

from .._exceptions import BatchSendError, ConfigError, QfanError
from .._transport import PublishEntry, RetryingSns, RetryingSqs, SendEntry
from .._wire._attributes import AttributeValue
from .._wire._codec import Encoder
from ._batching import Coalescer
from ._delays import DUE_AT, Delay, LongDelays
from ._hooks import HookSet
from ._outgoing import Destination, Outgoing, chunks, fit, prepare, verify_sent
from ._payloads import Payloads

T = TypeVar("T")
E = TypeVar("E")
A = TypeVar("A", bound="_Answer")


class _Answer(Protocol):
    @property
    def id(self) -> str: ...


SendBatch = Callable[[Sequence[Outgoing]], Awaitable[list[str | QfanError]]]
"""Sends one batch (at most 10 entries and the destination's size) and returns a result per entry."""

_SEND_MANY_CONCURRENCY = 16  # batch calls in flight: ~3,500 msg/s from one send_many at 20 ms round trips


def sqs_batches(sqs: RetryingSqs, queue_url: str, fifo: bool) -> SendBatch:
    """SendMessageBatch to ``queue_url``, each sent entry's digests checked against what was sent."""
    return _batches(
        "SendMessageBatch",
        partial(sqs.send_batch, queue_url),
        _send_entry,
        lambda ok, e: verify_sent(ok, e, fifo),
    )


def _send_entry(entry_id: str, e: Outgoing) -> SendEntry:
    if e.system_attributes is None:  # nearly always: left out of the request
        return SendEntry(entry_id, e.body, e.attributes, e.delay, e.group_id, e.dedup_id)
    return SendEntry(entry_id, e.body, e.attributes, e.delay, e.group_id, e.dedup_id, e.system_attributes)


def sns_batches(sns: RetryingSns, topic_arn: str) -> SendBatch:
    """PublishBatch to ``topic_arn`` (SNS reports no digests to check)."""
    return _batches(
        "PublishBatch",
        partial(sns.publish_batch, topic_arn),
        lambda i, e: PublishEntry(i, e.body, e.attributes, e.subject, e.group_id, e.dedup_id),
        lambda ok, e: ok.message_id,
    )


def _batches(
    operation: str,
    call: Callable[[list[E]], Awaitable[tuple[list[A], dict[str, QfanError]]]],
    entry: Callable[[str, Outgoing], E],
    result: Callable[[A, Outgoing], str | QfanError],
) -> SendBatch:
    """A batch call: each message as an entry (its id, its index), then each answer matched back to it."""

    async def send(batch: Sequence[Outgoing]) -> list[str | QfanError]:
        done, errors = await call([entry(str(i), e) for i, e in enumerate(batch)])
        results = _unanswered(operation, len(batch))
        for ok in done:
            results[int(ok.id)] = result(ok, batch[int(ok.id)])
        for entry_id, error in errors.items():
            results[int(entry_id)] = error
        return results

    return send


def _unanswered(operation: str, count: int) -> list[str | QfanError]:
    return [QfanError(f"{operation} returned no result for this entry") for _ in range(count)]


class MessageOptions(TypedDict, total=False):
    """What a message may carry besides its body (``Queue.send``'s keyword options)."""

    delay: Delay | None
    delay_until: datetime | None
    group_id: str | None
    dedup_id: str | None
    attributes: Mapping[str, AttributeValue] | None


class SendOptions(MessageOptions, total=False):
    """:class:`MessageOptions`, and a topic's ``subject``."""

    subject: str | None


class Outbound:
    """The outbound pipeline of one declared queue or topic.

    Args:
        destination: what the checks need to know about the queue or topic.
        encoder: the handle's body encoder.
        payloads: its offload policy bound to S3 (``None``: bodies never go to S3).
        send_batch: the batch call (:func:`sqs_batches` or :func:`sns_batches`).
        linger: seconds a batch waits for concurrent entries.
        hooks: the app's pipeline hooks.
        delays: how delays longer than one hop travel (standard queues only).
    """

    def __init__(
        self,
        destination: Destination,
        encoder: Encoder,
        payloads: Payloads | None,
        send_batch: SendBatch,
        *,
        linger: float,
        hooks: HookSet,
        delays: LongDelays | None = None,
    ) -> None:
        self.destination = destination
        self._delays = delays or LongDelays()
        self.payloads = payloads
        self._encoder = encoder
        self._send_batch = send_batch
        self._hooks = hooks
        self._sends: Coalescer[Outgoing, str] = Coalescer(
            self._send_and_report,
            linger=linger,
            max_bytes=destination.max_size,
            size_of=lambda entry: entry.size,
            serial=destination.fifo,
        )

    def prepare(self, value: object, **options: Unpack[SendOptions]) -> Outgoing:
        """Encode and check one message (size left to :meth:`fit` when it may be offloaded).

        A delay longer than one hop goes out as one hop with the due time in ``qfan-due-at`` (see
        :mod:`qfan._pipeline._delays`).
        """
        attributes = options.get("attributes")
        hop, due_at = self._delays.schedule(options.get("delay"), options.get("delay_until"))
        if due_at is not None:
            if self.destination.fifo or not self.destination.delay_allowed:
                raise ConfigError(
                    f"{self.destination.name!r}: delays beyond {self._delays.hop} s need a standard queue "
                    "(FIFO queues and topics take no per-message delay)"
                )
            attributes = {**(attributes or {}), DUE_AT: round(due_at, 3)}
        if self._hooks:
            attributes = self._hooks.before_send(self.destination, dict(attributes or {}))
        entry = prepare(
            self._encoder,
            self.destination,
            value,
            delay=hop,
            group_id=options.get("group_id"),
            dedup_id=options.get("dedup_id"),
            attributes=attributes,
            check_size=self.payloads is None,
        )
        subject = options.get("subject")
        return entry if subject is None else replace(entry, subject=subject)

    async def fit(self, entry: Outgoing) -> Outgoing:
        """Offload the body if the policy wants it; the entry as it will travel."""
        return entry if self.payloads is None else await fit(entry, self.payloads, self.destination)

    async def send(self, value: object, **options: Any) -> str:
        """Send one message, coalesced with concurrent ones; its message id or its own error."""
        return await self._sends.submit(await self.fit(self.prepare(value, **options)))

    async def send_entry(self, entry: Outgoing) -> str:
        """Send a message prepared elsewhere (a forwarded copy), coalesced like the others."""
        return await self._sends.submit(entry)

    async def send_many(
        self, values: Iterable[T], dedup_id: Callable[[T], str] | None = None, **options: Any
    ) -> list[str]:
        """Send many messages in full batches, in order on FIFO destinations; ``BatchSendError`` on failures.

        Every value is encoded and checked, and every large body uploaded, before anything is sent; if an
        upload fails nothing is sent and the uploads already made are deleted again.
        """
        entries = [
            self.prepare(v, dedup_id=None if dedup_id is None else dedup_id(v), **options) for v in values
        ]
        if self.payloads is not None:
            entries = await self._fit_all(entries, self.payloads)
        results: list[str | QfanError] = [""] * len(entries)
        limiter = anyio.CapacityLimiter(1 if self.destination.fifo else _SEND_MANY_CONCURRENCY)

        async def send_chunk(start: int, chunk: list[Outgoing]) -> None:
            async with limiter:
                results[start : start + len(chunk)] = await self._send_and_report(chunk)

        async with anyio.create_task_group() as tg:
            for start, chunk in chunks(entries, self.destination.max_size):
                tg.start_soon(send_chunk, start, chunk)
        if any(isinstance(r, QfanError) for r in results):
            raise BatchSendError(results)
        return [r for r in results if isinstance(r, str)]

    async def _fit_all(self, entries: list[Outgoing], payloads: Payloads) -> list[Outgoing]:
        """Offload what needs it, uploading in parallel; if one fails, nothing is sent, uploads are undone."""
        fitted: list[Outgoing | None] = [None] * len(entries)
        failures: list[QfanError] = []

        async def fit_one(index: int, entry: Outgoing) -> None:
            try:
                fitted[index] = await fit(entry, payloads, self.destination)
            except QfanError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for index, entry in enumerate(entries):
                tg.start_soon(fit_one, index, entry)
        if failures:
            await payloads.discard([e.payload for e in fitted if e is not None and e.payload is not None])
            raise failures[0]
        return [e for e in fitted if e is not None]

    async def _send_and_report(self, batch: Sequence[Outgoing]) -> list[str | QfanError]:
        results = await self._send_batch(batch)
        if self._hooks:
            for result in results:
                self._hooks.after_send(self.destination, result)
        return results
