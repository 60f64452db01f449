"""Settling received messages: deletes and visibility changes, coalesced into batch calls, then payloads.

A message is deleted before its S3 payload: if the delete fails, the payload stays, so the message can still
be read when it is delivered again. Receipt handles in AWS's Java extended-client format are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import QfanError
from .._transport import ReceiptEntry, RetryingSqs, VisibilityEntry
from .._wire._pointer import PayloadLocation, split_receipt_handle
from ._batching import Coalescer, Finished
from ._loop import spawn
from ._payloads import Payloads


class Receipts:
    """The settling side of one declared queue.

    Args:
        sqs: the retried SQS planes.
        queue_url: the queue.
        payloads: its offload policy bound to S3 (``None``: nothing offloaded to delete).
        linger: seconds a batch waits for concurrent entries.
    """

    def __init__(self, sqs: RetryingSqs, queue_url: str, payloads: Payloads | None, *, linger: float) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._payloads = payloads
        self._deletes: Coalescer[str, None] = Coalescer(self._delete_batch, linger=linger)
        self._visibility: Coalescer[tuple[str, int], None] = Coalescer(self._visibility_batch, linger=linger)

    async def delete(self, receipt_handle: str, payload: PayloadLocation | None = None) -> None:
        """Delete one message (coalesced into DeleteMessageBatch), then its payload if the policy says so.

        The payload (``payload``, or the one a Java-format receipt handle names) is deleted only when the
        policy deletes on ack and allows its bucket and key; a failure there is logged and counted, never
        raised.
        """
        handle, location = self._split(receipt_handle, payload)
        await self._deletes.submit(handle)
        if location is not None:
            await self._payloads_of(location)

    def delete_soon(
        self,
        receipt_handle: str,
        payload: PayloadLocation | None,
        done: Finished,
    ) -> None:
        """:meth:`delete` without waiting: ``done`` gets ``None`` once the message (and its payload, as
        :meth:`delete` would) is deleted, or the error that kept the message from being deleted."""
        handle, location = self._split(receipt_handle, payload)

        def deleted(outcome: QfanError | None) -> None:
            if outcome is not None or location is None:
                done(outcome)
            else:
                spawn(self._then_payload(location, done))

        self._deletes.submit_soon(handle, deleted)

    def _split(
        self, receipt_handle: str, payload: PayloadLocation | None
    ) -> tuple[str, PayloadLocation | None]:
        """The SQS receipt handle, and the payload to delete after the message (``None``: none to)."""
        handle, marked = split_receipt_handle(receipt_handle)
        location = payload or marked
        payloads = self._payloads
        if location is None or payloads is None or not payloads.policy.delete_payload_on_ack:
            return handle, None
        if not payloads.policy.allows(location.bucket, location.key):  # a forged pointer deletes nothing
            return handle, None
        return handle, location

    async def _payloads_of(self, location: PayloadLocation) -> None:
        assert self._payloads is not None
        await self._payloads.delete(location)

    async def _then_payload(self, location: PayloadLocation, done: Finished) -> None:
        try:
            await self._payloads_of(location)
        finally:
            done(None)

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Set one message's visibility timeout (coalesced into ChangeMessageVisibilityBatch)."""
        handle, _ = split_receipt_handle(receipt_handle)
        await self._visibility.submit((handle, seconds))

    async def _delete_batch(self, handles: Sequence[str]) -> list[QfanError | None]:
        entries = [ReceiptEntry(str(i), handle) for i, handle in enumerate(handles)]
        _, errors = await self._sqs.delete_batch(self._url, entries)
        return [errors.get(str(i)) for i in range(len(handles))]

    async def _visibility_batch(self, changes: Sequence[tuple[str, int]]) -> list[QfanError | None]:
        entries = [VisibilityEntry(str(i), h, s) for i, (h, s) in enumerate(changes)]
        _, errors = await self._sqs.change_visibility_batch(self._url, entries)
        return [errors.get(str(i)) for i in range(len(changes))]
