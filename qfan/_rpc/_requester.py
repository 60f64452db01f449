"""The requesting side: one reply queue per process, one long-poll loop routing replies to waiting requests.

The reply queue is created on the first request, named ``qfan-reply-<app>-<random>``, tagged with its owner
and a heartbeat the router refreshes (the proof of life sweeps go by); it is deleted when the app closes. A
reply arrives through the same inbound path as any message (MD5 digests verified, an offloaded body fetched
under the request queue's policy), so a corrupted reply is a typed error, never a wrong value.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc

from .._exceptions import PayloadError, QfanError, QueueNotFound, RemoteError, RequestTimeout
from .._pipeline._connection import Connection
from .._pipeline._inbound import arrive
from .._pipeline._message import AwaitedSettler
from .._pipeline._payloads import Payloads
from .._resources._queue import Queue
from .._transport import ReceiptEntry, ReceivedMessage, VisibilityEntry
from .._wire._attributes import AttributeValue, from_wire
from .._wire._codec import Decoder
from .._wire._pointer import PayloadLocation
from ._protocol import (
    CORRELATION_ID,
    ERROR_TYPE,
    HEARTBEAT_SECONDS,
    HEARTBEAT_TAG,
    OWNER_TAG,
    REPLY_MAX_SIZE,
    REPLY_PREFIX,
    RESPONSE_QUEUE_URL,
    RpcStats,
    now,
)

logger = logging.getLogger("qfan")

RECEIVE_WAIT = 20  # the reply loop's long poll, seconds
_TEXT: Decoder[str] = Decoder(str)  # error replies carry text


class _Pending:
    """A request waiting for its reply: how to read it, and, once it came, its value or error."""

    __slots__ = ("correlation_id", "decoder", "done", "error", "payloads", "value")

    def __init__(self, correlation_id: str, decoder: Decoder[Any], payloads: Payloads | None) -> None:
        self.correlation_id = correlation_id
        self.decoder = decoder
        self.payloads = payloads
        self.done = anyio.Event()
        self.value: Any = None
        self.error: QfanError | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class ReplyRouter(AwaitedSettler):
    """The requesting side of one app: owns the reply queue and routes replies to the waiting requests."""

    def __init__(self, app_name: str) -> None:
        self._safe_name = re.sub(r"[^A-Za-z0-9_-]", "-", app_name)[:40]
        self.name = self._new_name()
        self.stats = RpcStats()
        self._pending: dict[str, _Pending] = {}
        self._decoders: dict[Any, Decoder[Any]] = {}
        self._url: str | None = None
        self._conn: Connection | None = None
        self._lock = anyio.Lock()

    @property
    def url(self) -> str | None:
        """The reply queue's URL once it exists."""
        return self._url

    async def request(
        self,
        conn: Connection,
        services: anyio.abc.TaskGroup,
        queue: Queue[Any],
        value: Any,
        *,
        response_type: Any,
        timeout: float,  # noqa: ASYNC109 - the request's own deadline, part of the public API
        attributes: Mapping[str, AttributeValue] | None,
        group_id: str | None,
        dedup_id: str | None,
    ) -> Any:
        """Send ``value`` to ``queue`` and wait for its reply (see :meth:`qfan.App.request`)."""
        url = await self._ensure(conn, services)
        correlation_id = uuid.uuid4().hex
        decoder = self._decoders.get(response_type)
        if decoder is None:
            decoder = self._decoders[response_type] = Decoder(response_type)
        pending = self._pending[correlation_id] = _Pending(correlation_id, decoder, await queue.payloads())
        try:
            await queue.send(
                value,
                attributes={**(attributes or {}), RESPONSE_QUEUE_URL: url, CORRELATION_ID: correlation_id},
                group_id=group_id,
                dedup_id=dedup_id,
            )
            self.stats.sent += 1
            with anyio.move_on_after(timeout):
                await pending.done.wait()
            if not pending.done.is_set():
                self.stats.timed_out += 1
                raise RequestTimeout(f"no reply from {queue.name!r} within {timeout} s")
            return pending.outcome()
        finally:
            del self._pending[correlation_id]

    # -- the reply queue ------------------------------------------------------------------------------

    def _new_name(self) -> str:
        return f"{REPLY_PREFIX}{self._safe_name}-{uuid.uuid4().hex[:12]}"

    async def _ensure(self, conn: Connection, services: anyio.abc.TaskGroup) -> str:
        if self._url is not None:
            return self._url
        async with self._lock:
            if self._url is None:
                self._conn = conn
                self._url = await self._create(conn)
                services.start_soon(self._receive_loop, conn)
                services.start_soon(self._heartbeat, conn)
            return self._url

    async def _create(self, conn: Connection) -> str:
        tags = {OWNER_TAG: f"{socket.gethostname()}:{os.getpid()}", HEARTBEAT_TAG: now()}
        attributes = {
            "MessageRetentionPeriod": "300",
            "VisibilityTimeout": "30",
            "MaximumMessageSize": str(REPLY_MAX_SIZE),
        }
        return await conn.sqs.create_queue(self.name, attributes, tags)

    async def _replace(self, conn: Connection, gone: str) -> None:
        """The reply queue was deleted under us (a sweep, an operator): carry on with a new one.

        A new name, because SQS refuses to re-create a deleted queue's name for 60 s. Requests already
        waiting named the old queue: their replies are lost, and they end in ``RequestTimeout``.
        """
        async with self._lock:
            if self._url != gone:
                return
            self.name = self._new_name()
            self._url = await self._create(conn)
            logger.warning("reply queue %s was deleted; replies now go to %s", gone, self._url)

    async def _heartbeat(self, conn: Connection) -> None:
        """Refresh the heartbeat tag: the proof of life :func:`sweep_reply_queues` goes by."""
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            url = self._url
            if url is None:
                return
            try:
                await conn.sqs.tag_queue(url, {HEARTBEAT_TAG: now()})
            except QfanError as exc:  # a deleted queue is replaced by the receive loop
                logger.warning("reply queue heartbeat failed: %s", exc)

    async def close(self, conn: Connection) -> None:
        """Delete the reply queue (clean shutdown); waiting requests see ``RequestTimeout`` or a cancel."""
        url, self._url = self._url, None
        if url is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await conn.sqs.delete_queue(url)
            except QfanError as exc:
                logger.warning("reply queue %s not deleted (the sweep will): %s", self.name, exc)

    # -- routing replies ------------------------------------------------------------------------------

    async def _receive_loop(self, conn: Connection) -> None:
        while True:
            url = self._url
            if url is None:
                return
            try:
                received = await conn.sqs.receive(
                    url, max_messages=10, wait_seconds=RECEIVE_WAIT, visibility_timeout=None
                )
            except QueueNotFound:
                try:
                    await self._replace(conn, url)
                except QfanError as exc:
                    logger.warning("reply queue %s: could not re-create it: %s", self.name, exc)
                    await anyio.sleep(1)
                continue
            except QfanError as exc:
                logger.warning("reply queue %s: receive failed: %s", self.name, exc)
                await anyio.sleep(1)
                continue
            read = [await self._route(raw) for raw in received]
            if received:
                entries = [ReceiptEntry(str(i), m.receipt_handle) for i, m in enumerate(received)]
                _, errors = await conn.sqs.delete_batch(url, entries)
                if errors:  # a reply delivered again is dropped as unknown: harmless
                    logger.warning("reply queue %s: %d replies not deleted", self.name, len(errors))
            for payloads, location in filter(None, read):
                await payloads.delete(location)

    async def _route(self, raw: ReceivedMessage) -> tuple[Payloads, PayloadLocation] | None:
        """Hand a reply to its request; the payload to delete once the reply is, if it was offloaded."""
        attributes, _ = from_wire(raw.attributes)
        pending = self._pending.get(str(attributes.get(CORRELATION_ID, "")))
        if pending is None or pending.done.is_set():
            self.stats.dropped += 1  # an offloaded one's payload is left to the bucket's expiry
            return None
        error_type = attributes.get(ERROR_TYPE)
        decoder = pending.decoder if error_type is None else _TEXT
        hooks = None if self._conn is None else self._conn.hooks
        [message] = await arrive([raw], decoder, self, pending.payloads, None, hooks)
        try:
            if error_type is None:
                pending.value = message.body
            else:
                text = message.body  # verified like any reply before it is believed
                self.stats.remote_errors += 1
                raise RemoteError(str(error_type), str(text), correlation_id=pending.correlation_id)
        except QfanError as exc:
            pending.error = exc
        self.stats.replied += 1
        pending.done.set()
        if message.payload is None or pending.payloads is None or isinstance(pending.error, PayloadError):
            return None
        return pending.payloads, message.payload

    # -- Settler (for the Message objects of replies; the loop deletes replies in batches itself) -----

    async def delete_receipt(self, receipt_handle: str, *, payload: PayloadLocation | None = None) -> None:
        """Delete one reply (replies are normally deleted by the receive loop)."""
        if self._conn is not None and self._url is not None:
            _, errors = await self._conn.sqs.delete_batch(self._url, [ReceiptEntry("0", receipt_handle)])
            if errors:
                raise errors["0"]

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Change one reply's visibility."""
        if self._conn is not None and self._url is not None:
            entry = VisibilityEntry("0", receipt_handle, seconds)
            _, errors = await self._conn.sqs.change_visibility_batch(self._url, [entry])
            if errors:
                raise errors["0"]
