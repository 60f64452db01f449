"""The responding side: check the reply address, run the handler, send its answer through the outbound path.

The reply address comes from whoever could send to the request queue, so it is checked (against
:class:`ReplyAddresses`) before the handler runs: a refused request never runs and nothing is sent. The
answer is prepared, offloaded and size-checked like any message, and the digests SQS reports for it are
verified, exactly as ``Queue.send`` does.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .._exceptions import ConfigError, HandlerOutcome, MessageTooLarge, QfanError, Reject
from .._pipeline._connection import Connection
from .._pipeline._hooks import CallNext
from .._pipeline._message import Message
from .._pipeline._outgoing import Destination, Outgoing, fit, prepare, verify_sent
from .._pipeline._payloads import Payloads
from .._resources._queue import Queue
from .._transport import SendEntry
from .._wire._codec import Encoder
from ._protocol import CORRELATION_ID, ERROR_TYPE, REPLY_MAX_SIZE, REPLY_PREFIX, RESPONSE_QUEUE_URL

logger = logging.getLogger("qfan")


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
    """Sends answers to reply addresses through the outbound path (prepare, offload, send, verify)."""

    def __init__(self) -> None:
        self._encoder = Encoder()

    async def reply(
        self,
        conn: Connection,
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
        destination = Destination(url.rpartition("/")[2], False, False, REPLY_MAX_SIZE)
        entry: Outgoing | None = None
        if error is None:
            try:
                entry = await self._prepare(
                    destination, value, {CORRELATION_ID: correlation_id}, payloads, conn
                )
            except MessageTooLarge as too_large:
                error = too_large
        if error is not None:
            if expose_errors or isinstance(error, MessageTooLarge):
                text = str(error)[:200_000]
            else:
                text = f"the responder withheld the error message (correlation id {correlation_id})"
            extra = {CORRELATION_ID: correlation_id, ERROR_TYPE: type(error).__name__}
            entry = await self._prepare(destination, text, extra, None, conn)
        assert entry is not None
        sent, errors = await conn.sqs.send_batch(
            url,
            [SendEntry("0", entry.body, entry.attributes, system_attributes=entry.system_attributes or {})],
        )
        if errors:
            raise errors["0"]
        verified = verify_sent(sent[0], entry, fifo=False)
        if isinstance(verified, QfanError):
            raise verified

    async def _prepare(
        self,
        destination: Destination,
        value: Any,
        attributes: dict[str, Any],
        payloads: Payloads | None,
        conn: Connection,
    ) -> Outgoing:
        if conn.hooks:  # a reply leaves like any message: hooks see it (trace context goes with it)
            attributes = conn.hooks.before_send(destination, attributes)
        entry = prepare(
            self._encoder,
            destination,
            value,
            delay=None,
            group_id=None,
            dedup_id=None,
            attributes=attributes,
            check_size=payloads is None,
        )
        return entry if payloads is None else await fit(entry, payloads, destination)


class Responder:
    """A responder as its worker runs it: :meth:`answer` wraps the user's handler (and the worker's other
    middleware: flow control, idempotency, so a duplicate request is answered with the stored result).

    Args:
        queue: the request queue.
        connect: the app's open connection.
        sender: sends the answers.
        reply_to: see :class:`ReplyAddresses`.
        expose_errors: send the text of a handler's exception to the requester.
    """

    def __init__(
        self,
        queue: Queue[Any],
        connect: Callable[[], Connection],
        sender: ReplySender,
        *,
        reply_to: Iterable[str],
        expose_errors: bool,
    ) -> None:
        self.queue = queue
        self.addresses = ReplyAddresses(reply_to)
        self.expose_errors = expose_errors
        self._connect = connect
        self._sender = sender

    async def answer(self, message: Message[Any], call_next: CallNext) -> Any:
        """Handle one request: check its reply address, run the handler, send its result (or error) back.

        A message without a reply address is handled like any worker's.
        """
        url = message.attributes.get(RESPONSE_QUEUE_URL)
        correlation_id = str(message.attributes.get(CORRELATION_ID, ""))
        if url is not None:  # checked first: a refused request never runs, so nothing leaks
            refusal = self.addresses.refusal(url, (await self.queue.declare()).url)
            if refusal is not None:
                raise Reject(f"reply address refused: {refusal}")
        try:
            result, error = await call_next(), None
        except HandlerOutcome:
            raise
        except Exception as exc:
            if url is None:
                raise
            result, error = None, exc
            logger.error(
                "responder for %s: request %s (correlation id %s) raised %s",
                self.queue.name,
                message.message_id,
                correlation_id,
                type(exc).__name__,
                exc_info=exc,
            )
        if isinstance(url, str):
            await self._sender.reply(
                self._connect(),
                url,
                correlation_id,
                result,
                error,
                await self.queue.payloads(),
                expose_errors=self.expose_errors,
            )
        return result
