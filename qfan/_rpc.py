"""Request/response over queues: a per-process reply queue, one long-poll loop for every pending request.

A request is a normal message on the request queue carrying two attributes: ``ResponseQueueUrl`` (the reply
address, as AWS's Java temporary-queues client names it) and ``qfan-correlation-id``. The responder sends its
answer to that URL with the same correlation id (and ``qfan-error-type`` when its handler raised). The
requester's reply queue is created on first use, named ``qfan-reply-<app>-<random>``, tagged with its owner
and a heartbeat time the loop refreshes; it is deleted when the app closes, and idle ones left by crashed
processes are swept by :func:`sweep_reply_queues`.

Large bodies go through S3 both ways, by the request queue's ``Offload`` policy: a request like any message
on that queue; a reply too large for a reply queue is uploaded by the responder under its queue's policy,
and the requester reads it under its own handle's policy (then deletes it). A responder without a policy
answers a too-large reply with a ``RemoteError`` saying so, rather than leaving the request to time out.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
import anyio.abc

from ._attributes import AttributeValue, from_wire, to_wire, wire_size
from ._codec import Decoder, Encoder
from ._exceptions import MessageError, MessageTooLarge, QfanError, RemoteError, RequestTimeout
from ._payloads import Payloads, fetch_all, is_offloaded
from ._pointer import PayloadLocation
from ._queue import Queue
from ._transport import ReceiptEntry, SendEntry, SqsConnection

logger = logging.getLogger("qfan")

RESPONSE_QUEUE_URL = "ResponseQueueUrl"
CORRELATION_ID = "qfan-correlation-id"
ERROR_TYPE = "qfan-error-type"
REPLY_PREFIX = "qfan-reply-"
OWNER_TAG = "qfan:owner"
HEARTBEAT_TAG = "qfan:heartbeat"
HEARTBEAT_SECONDS = 60.0
# Reply queues are created with SQS's classic limit, so that every emulator and region accepts them.
REPLY_MAX_SIZE = 262_144


@dataclass
class RpcStats:
    """Counters of this app's requests.

    Attributes:
        sent: requests sent.
        replied: replies matched to a waiting request.
        timed_out: requests that got no reply in time.
        remote_errors: replies saying the responder raised.
        dropped: replies nobody waited for (late, or unknown correlation id).
    """

    sent: int = 0
    replied: int = 0
    timed_out: int = 0
    remote_errors: int = 0
    dropped: int = 0


class _Pending:
    __slots__ = ("body", "content_type", "decoder", "done", "error", "error_type", "payloads")

    def __init__(self, decoder: Decoder[Any], payloads: Payloads | None) -> None:
        self.decoder = decoder
        self.payloads = payloads
        self.done = anyio.Event()
        self.body = ""
        self.content_type: str | None = None
        self.error_type: str | None = None
        self.error: MessageError | None = None  # the reply's offloaded body could not be read

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        if self.error_type is not None:
            raise RemoteError(self.error_type, self.body)
        return self.decoder.decode(self.body, self.content_type)


class ReplyRouter:
    """The requesting side: owns the reply queue and routes replies to the waiting requests."""

    def __init__(self, app_name: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", app_name)[:40]
        self.name = f"{REPLY_PREFIX}{safe}-{uuid.uuid4().hex[:12]}"
        self.stats = RpcStats()
        self._pending: dict[str, _Pending] = {}
        self._decoders: dict[Any, Decoder[Any]] = {}
        self._url: str | None = None
        self._lock = anyio.Lock()
        self._encoder = Encoder()

    @property
    def url(self) -> str | None:
        """The reply queue's URL once it exists."""
        return self._url

    async def request(
        self,
        conn: SqsConnection,
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
        pending = self._pending[correlation_id] = _Pending(decoder, await queue._payloads())
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

    async def _ensure(self, conn: SqsConnection, services: anyio.abc.TaskGroup) -> str:
        if self._url is not None:
            return self._url
        async with self._lock:
            if self._url is None:
                tags = {OWNER_TAG: f"{socket.gethostname()}:{os.getpid()}", HEARTBEAT_TAG: _now()}
                attributes = {
                    "MessageRetentionPeriod": "300",
                    "VisibilityTimeout": "30",
                    "MaximumMessageSize": str(REPLY_MAX_SIZE),
                }
                url = await conn.retry.call(lambda: conn.control.create_queue(self.name, attributes, tags))
                services.start_soon(self._receive_loop, conn, url)
                services.start_soon(self._heartbeat, conn, url)
                self._url = url
            return self._url

    async def _receive_loop(self, conn: SqsConnection, url: str) -> None:
        while True:
            try:
                received = await conn.retry.call(
                    lambda: conn.data.receive(url, max_messages=10, wait_seconds=20, visibility_timeout=None)
                )
            except QfanError as exc:
                logger.warning("reply queue %s: receive failed: %s", self.name, exc)
                await anyio.sleep(1)
                continue
            payloads_read: list[tuple[Payloads, PayloadLocation]] = []
            for message in received:
                attributes, content_type = from_wire(message.attributes)
                pending = self._pending.get(str(attributes.get(CORRELATION_ID, "")))
                if pending is None or pending.done.is_set():
                    self.stats.dropped += 1  # an offloaded one's payload is left to the bucket's expiry
                    continue
                pending.body, pending.content_type = message.body, content_type
                if is_offloaded(message.attributes):
                    (fetched,) = await fetch_all([message], pending.payloads)
                    assert fetched is not None
                    if fetched.error is not None:
                        pending.error = fetched.error
                    else:
                        pending.body, pending.content_type = fetched.body or "", fetched.content_type
                        if pending.payloads is not None and fetched.location is not None:
                            payloads_read.append((pending.payloads, fetched.location))
                error_type = attributes.get(ERROR_TYPE)
                pending.error_type = None if error_type is None else str(error_type)
                self.stats.replied += 1
                self.stats.remote_errors += pending.error_type is not None
                pending.done.set()
            if received:
                entries = [ReceiptEntry(str(i), m.receipt_handle) for i, m in enumerate(received)]
                _, errors = await conn.retry.call_batch(
                    "DeleteMessageBatch", partial(conn.data.delete_batch, url), entries
                )
                if errors:  # a reply delivered again is dropped as unknown: harmless
                    logger.warning("reply queue %s: %d replies not deleted", self.name, len(errors))
            for payloads, location in payloads_read:
                await payloads.delete(location)

    @staticmethod
    async def _heartbeat(conn: SqsConnection, url: str) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            try:
                await conn.retry.call(lambda: conn.control.tag_queue(url, {HEARTBEAT_TAG: _now()}))
            except QfanError as exc:
                logger.warning("reply queue heartbeat failed: %s", exc)

    async def close(self, conn: SqsConnection) -> None:
        """Delete the reply queue (clean shutdown); waiting requests see ``RequestTimeout`` or a cancel."""
        url, self._url = self._url, None
        if url is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await conn.retry.call(lambda: conn.control.delete_queue(url))
            except QfanError as exc:
                logger.warning("reply queue %s not deleted (the sweep will): %s", self.name, exc)


class ReplySender:
    """The responding side: sends each answer straight to the reply address the request carried."""

    def __init__(self) -> None:
        self._encoder = Encoder()

    async def reply(
        self,
        conn: SqsConnection,
        url: str,
        correlation_id: str,
        value: Any,
        error: BaseException | None,
        payloads: Payloads | None = None,
    ) -> None:
        """Send the handler's result (or its exception's type and message) to ``url``.

        A result too large for the reply queue goes through S3 under ``payloads`` (the request queue's
        policy); without one, the requester gets a ``RemoteError`` of type ``MessageTooLarge``.
        """
        if error is None:
            body, content_type = self._encoder.encode(value)
            wire = to_wire({CORRELATION_ID: correlation_id}, content_type)
            size = len(body.encode()) + wire_size(wire)
            if size > REPLY_MAX_SIZE or (payloads is not None and payloads.wants(size)):
                if payloads is None:
                    error = MessageTooLarge(size, REPLY_MAX_SIZE, url.rpartition("/")[2])
                else:
                    offloaded = payloads.offload(body, wire)
                    await payloads.upload(offloaded)
                    body, wire = offloaded.body, offloaded.attributes
        if error is not None:
            extra: dict[str, AttributeValue] = {
                CORRELATION_ID: correlation_id,
                ERROR_TYPE: type(error).__name__,
            }
            body, wire = str(error)[:200_000], to_wire(extra, "text/plain")
        entry = SendEntry("0", body, wire)
        _, errors = await conn.retry.call_batch(
            "SendMessageBatch", partial(conn.data.send_batch, url), [entry]
        )
        if errors:
            raise errors["0"]


async def sweep_reply_queues(conn: SqsConnection, idle_seconds: float, keep: str | None = None) -> list[str]:
    """Delete reply queues whose heartbeat is older than ``idle_seconds`` (left by crashed processes).

    Returns the URLs deleted. A reply queue without a readable heartbeat tag is left alone.
    """
    deleted: list[str] = []
    urls = await conn.retry.call(lambda: conn.control.list_queues(REPLY_PREFIX))
    for url in urls:
        if keep is not None and url == keep:
            continue
        tags = await conn.retry.call(partial(conn.control.list_queue_tags, url))
        try:
            heartbeat = datetime.fromisoformat(tags[HEARTBEAT_TAG])
        except (KeyError, ValueError):
            continue
        if time.time() - heartbeat.timestamp() > idle_seconds:
            await conn.retry.call(partial(conn.control.delete_queue, url))
            deleted.append(url)
    return deleted


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
