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

import fnmatch
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc

from ._attributes import AttributeValue, from_wire, to_wire, wire_size
from ._codec import Decoder, Encoder
from ._exceptions import (
    ConfigError,
    MessageError,
    MessageTooLarge,
    QfanError,
    QueueNotFound,
    RemoteError,
    RequestTimeout,
)
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
MIN_SWEEP_IDLE = 3 * HEARTBEAT_SECONDS
"""The shortest idle time a sweep accepts: three missed heartbeats, so a slow tag call never looks dead."""
RECEIVE_WAIT = 20  # the reply loop's long poll, seconds
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
    __slots__ = (
        "body",
        "content_type",
        "correlation_id",
        "decoder",
        "done",
        "error",
        "error_type",
        "payloads",
    )

    def __init__(self, correlation_id: str, decoder: Decoder[Any], payloads: Payloads | None) -> None:
        self.correlation_id = correlation_id
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
            raise RemoteError(self.error_type, self.body, correlation_id=self.correlation_id)
        return self.decoder.decode(self.body, self.content_type)


class ReplyRouter:
    """The requesting side: owns the reply queue and routes replies to the waiting requests."""

    def __init__(self, app_name: str) -> None:
        self._safe_name = re.sub(r"[^A-Za-z0-9_-]", "-", app_name)[:40]
        self.name = self._new_name()
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
        pending = self._pending[correlation_id] = _Pending(correlation_id, decoder, await queue._payloads())
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

    def _new_name(self) -> str:
        return f"{REPLY_PREFIX}{self._safe_name}-{uuid.uuid4().hex[:12]}"

    async def _ensure(self, conn: SqsConnection, services: anyio.abc.TaskGroup) -> str:
        if self._url is not None:
            return self._url
        async with self._lock:
            if self._url is None:
                self._url = await self._create(conn)
                services.start_soon(self._receive_loop, conn)
                services.start_soon(self._heartbeat, conn)
            return self._url

    async def _create(self, conn: SqsConnection) -> str:
        tags = {OWNER_TAG: f"{socket.gethostname()}:{os.getpid()}", HEARTBEAT_TAG: _now()}
        attributes = {
            "MessageRetentionPeriod": "300",
            "VisibilityTimeout": "30",
            "MaximumMessageSize": str(REPLY_MAX_SIZE),
        }
        name = self.name
        return await conn.retry.call(lambda: conn.control.create_queue(name, attributes, tags))

    async def _replace(self, conn: SqsConnection, gone: str) -> None:
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

    async def _receive_loop(self, conn: SqsConnection) -> None:
        while True:
            url = self._url
            if url is None:
                return
            try:
                received = await conn.retry.call(
                    partial(
                        conn.data.receive,
                        url,
                        max_messages=10,
                        wait_seconds=RECEIVE_WAIT,
                        visibility_timeout=None,
                    )
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

    async def _heartbeat(self, conn: SqsConnection) -> None:
        """Refresh the heartbeat tag: the proof of life :func:`sweep_reply_queues` goes by."""
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            url = self._url
            if url is None:
                return
            try:
                await conn.retry.call(partial(conn.control.tag_queue, url, {HEARTBEAT_TAG: _now()}))
            except QfanError as exc:  # a deleted queue is replaced by the receive loop
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


class ReplyAddresses:
    """Where a responder may send replies: the guard against a request naming someone else's queue.

    A request's ``ResponseQueueUrl`` is written by whoever could send to the request queue, so it is not
    trusted: a responder that answered anywhere would write its results (and errors) into any queue it can
    reach, a confused deputy. A reply address is accepted when it is a queue URL (``<endpoint>/<account>/
    <name>``, nothing more) and either

    - it is on the request queue's own endpoint and account, and its name matches ``qfan-reply-*`` (the
      queues qfan requesters create) or one of the name patterns given; or
    - it matches one of the full-URL patterns given (a pattern with ``://``), e.g. another account's.

    Patterns are shell-style (``fnmatch``, case-sensitive).

    Args:
        patterns: extra reply queue names or name patterns (``"web-replies-*"``), or full queue URL
            patterns (``"https://sqs.eu-west-1.amazonaws.com/111122223333/replies-*"``).
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        if isinstance(patterns, str):
            patterns = [patterns]
        names, urls = [f"{REPLY_PREFIX}*"], []
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigError(f"reply_to entries must be queue name or URL patterns, got {pattern!r}")
            if "://" in pattern:
                urls.append(pattern)
            elif "/" in pattern:
                raise ConfigError(f"reply_to {pattern!r}: give a queue name pattern or a full URL pattern")
            else:
                names.append(pattern)
        self.names: tuple[str, ...] = tuple(names)
        self.urls: tuple[str, ...] = tuple(urls)

    def refusal(self, address: object, request_queue_url: str) -> str | None:
        """Why ``address`` may not get a reply to a request from ``request_queue_url``; ``None`` if it may."""
        if not isinstance(address, str):
            return f"{RESPONSE_QUEUE_URL} is a {type(address).__name__}, not a queue URL"
        try:
            parts = urlsplit(address)
            segments = parts.path.split("/")
            port = parts.port
        except ValueError:
            return f"{RESPONSE_QUEUE_URL} {address[:200]!r} is not a URL"
        shaped = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and not (parts.query or parts.fragment or parts.username or parts.password)
            and len(segments) == 3
            and segments[1].isdigit()
            and bool(segments[2])
        )
        if not shaped:
            return f"{RESPONSE_QUEUE_URL} {address[:200]!r} is not a queue URL (<endpoint>/<account>/<name>)"
        if any(fnmatch.fnmatchcase(address, pattern) for pattern in self.urls):
            return None
        own = urlsplit(request_queue_url)
        same_place = (
            parts.scheme == own.scheme
            and (parts.hostname or "").lower() == (own.hostname or "").lower()
            and port == own.port
            and segments[1] == own.path.split("/")[1]
        )
        if not same_place:
            return (
                f"reply address {address[:200]!r} is not on the request queue's endpoint and account, "
                "and matches no reply_to URL pattern"
            )
        if not any(fnmatch.fnmatchcase(segments[2], pattern) for pattern in self.names):
            return (
                f"reply queue {segments[2]!r} matches none of the allowed names "
                f"{', '.join(map(repr, self.names))} (widen with reply_to=)"
            )
        return None


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
        *,
        expose_errors: bool = False,
    ) -> None:
        """Send the handler's result (or its exception's type, and message if exposed) to ``url``.

        A result too large for the reply queue goes through S3 under ``payloads`` (the request queue's
        policy); without one, the requester gets a ``RemoteError`` of type ``MessageTooLarge``. The text
        of a handler's exception may hold anything (paths, data, secrets), so it is sent only with
        ``expose_errors``; qfan's own ``MessageTooLarge`` says only sizes and is always sent.
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
            if expose_errors or isinstance(error, MessageTooLarge):
                text = str(error)[:200_000]
            else:
                text = f"the responder withheld the error message (correlation id {correlation_id})"
            body, wire = text, to_wire(extra, "text/plain")
        entry = SendEntry("0", body, wire)
        _, errors = await conn.retry.call_batch(
            "SendMessageBatch", partial(conn.data.send_batch, url), [entry]
        )
        if errors:
            raise errors["0"]


def check_sweep_idle(idle_seconds: float) -> None:
    """Refuse an idle time under :data:`MIN_SWEEP_IDLE`: a live requester's heartbeat may be that old."""
    if isinstance(idle_seconds, bool) or not isinstance(idle_seconds, int | float):
        raise ConfigError(f"idle seconds must be a number, got {idle_seconds!r}")
    if not idle_seconds >= MIN_SWEEP_IDLE:
        raise ConfigError(
            f"idle {idle_seconds} s is too short to tell a crashed requester from a live one: reply queues "
            f"refresh their heartbeat every {HEARTBEAT_SECONDS:.0f} s, so the least is {MIN_SWEEP_IDLE:.0f} s"
        )


async def sweep_reply_queues(conn: SqsConnection, idle_seconds: float, keep: str | None = None) -> list[str]:
    """Delete reply queues whose heartbeat is older than ``idle_seconds`` (left by crashed processes).

    A live requester refreshes its heartbeat tag every ``HEARTBEAT_SECONDS``, so only queues whose owner
    stopped doing so for ``idle_seconds`` (at least ``MIN_SWEEP_IDLE``, else ``ConfigError``) go. Returns
    the URLs deleted. A reply queue without a readable heartbeat tag is left alone.
    """
    check_sweep_idle(idle_seconds)
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
