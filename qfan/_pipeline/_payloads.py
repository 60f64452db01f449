"""Offloaded payloads at run time: stored on send, fetched (bounded, capped) on receive, deleted on ack.

A payload that cannot be read never fails a receive: the message carries the typed error and raises it
when its body is accessed, exactly like an undecodable body, so the other messages are unaffected.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec

from .. import _exceptions as errors
from .._transport import ReceivedMessage, RetryingObjectStore, WireAttribute, WireAttributes
from .._wire._codec import BYTES, CONTENT_TYPE, JSON, MSGPACK, TEXT
from .._wire._envelope import AcceptedTopics, looks_like_envelope, unwrap
from .._wire._pointer import MARKERS, PayloadLocation, parse_pointer, pointer_body
from ._hooks import HookSet, PayloadCall
from ._offload import Offload

logger = logging.getLogger("qfan")

# Concurrent S3 transfers per queue: enough to hide S3's latency, few enough not to exhaust the pool.
_TRANSFERS = 16
_QFAN_CONTENT_TYPES = frozenset({JSON, TEXT, BYTES, MSGPACK})
_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Fetched:
    """What became of an offloaded message's payload: its body and content type, or the error."""

    location: PayloadLocation | None
    body: str | None = None
    content_type: str | None = None
    error: errors.MessageError | None = None


@dataclass(frozen=True, slots=True)
class Offloaded:
    """A body planned for S3: the pointer message that replaces it, and the object that holds it."""

    body: str
    attributes: dict[str, WireAttribute]
    location: PayloadLocation
    data: bytes
    content_type: str | None


def is_offloaded(attributes: WireAttributes) -> bool:
    """Whether a received message carries an offload marker (either name)."""
    return any(name in attributes for name in MARKERS)


def _pointer_message(raw: ReceivedMessage, topics: AcceptedTopics | None) -> ReceivedMessage | None:
    """The message as its offloading sender published it, when it is offloaded; else ``None``.

    SNS delivers without raw delivery as an envelope whose attributes hold the marker (AWS's SNS extended
    client publishes that way): then the pointer and the marker are inside it.
    """
    if is_offloaded(raw.attributes):
        return raw
    if not looks_like_envelope(raw.body, raw.attributes):
        return None
    try:
        unwrapped = unwrap(raw.body, topics)
    except errors.MessageError:  # a malformed or refused envelope is the message's own error, raised on .body
        return None
    if unwrapped is None or not is_offloaded(unwrapped[1]):
        return None
    return msgspec.structs.replace(raw, body=unwrapped[0], attributes=unwrapped[1])


class Payloads:
    """The offloading side of one declared queue: its policy bound to S3 and the queue's size limit.

    Attributes:
        policy: the queue's offload policy.
        threshold: bodies (with attributes) larger than this many bytes are offloaded.
        delete_failures: payloads whose deletion after an ack failed (they are left to the lifecycle rule).
    """

    def __init__(
        self,
        policy: Offload,
        s3: RetryingObjectStore,
        *,
        queue: str,
        max_message_size: int,
        hooks: HookSet | None = None,
    ) -> None:
        self.policy = policy
        self._hooks = hooks
        self.threshold = policy.threshold_for(max_message_size)
        self.delete_failures = 0
        self._s3 = s3
        self._queue = queue
        self._limiter = anyio.CapacityLimiter(_TRANSFERS)

    def wants(self, size: int) -> bool:
        """Whether a message of ``size`` bytes (body + attributes) goes through S3."""
        return self.policy.always or size > self.threshold

    # -- sending --------------------------------------------------------------------------------------

    def offload(self, body: str, attributes: WireAttributes) -> Offloaded:
        """Plan offloading ``body``: the pointer message to send instead, and the object to upload first.

        qfan's content-type attribute moves onto the S3 object; the marker attribute takes its place.
        """
        data = body.encode()
        if len(data) > self.policy.max_payload_size:
            raise errors.MessageTooLarge(
                len(data), self.policy.max_payload_size, self._queue, what="max_payload_size"
            )
        location = PayloadLocation(self.policy.bucket, f"{self.policy.prefix}{uuid.uuid4()}")
        content = attributes.get(CONTENT_TYPE)
        wire = {name: value for name, value in attributes.items() if name != CONTENT_TYPE}
        wire[self.policy.marker] = WireAttribute("Number", string_value=str(len(data)))
        return Offloaded(
            pointer_body(location), wire, location, data, None if content is None else content.string_value
        )

    async def upload(self, offloaded: Offloaded) -> None:
        """Store an offloaded body in S3 (retrying transient failures: the key makes it idempotent)."""
        location, encryption = offloaded.location, self.policy.put_encryption()
        async with self._limiter:
            started = time.time_ns()
            try:
                await self._s3.put_object(
                    location.bucket,
                    location.key,
                    offloaded.data,
                    content_type=offloaded.content_type,
                    encryption=encryption,
                )
            except errors.QfanError as exc:
                self._report("PutObject", location, None, offloaded.attributes, started, exc)
                raise
            self._report("PutObject", location, len(offloaded.data), offloaded.attributes, started)

    def _report(
        self,
        operation: str,
        location: PayloadLocation,
        size: int | None,
        attributes: WireAttributes,
        started: int,
        error: errors.QfanError | None = None,
    ) -> None:
        if self._hooks:
            call = PayloadCall(
                operation, self._queue, location, size, attributes, started, time.time_ns(), error
            )
            self._hooks.after_payload(call)

    async def discard(self, locations: Sequence[PayloadLocation]) -> None:
        """Best-effort delete of payloads whose messages were certainly never sent."""
        for location in locations:
            await self.delete(location)

    # -- receiving ------------------------------------------------------------------------------------

    async def fetch(self, raw: ReceivedMessage) -> Fetched:
        """Download the payload a received pointer names, or say why it cannot be had."""
        checked = _check_pointer(raw, self.policy)
        if isinstance(checked, Fetched):
            return checked
        location = checked
        bucket, key = location.bucket, location.key
        where = f"message {raw.message_id}: payload s3://{bucket}/{key}"
        limit = self.policy.max_payload_size
        started = time.time_ns()
        try:
            async with self._limiter:
                stored = await self._s3.get_object(bucket, key, max_size=limit)
        except errors.QfanError as exc:
            self._report("GetObject", location, None, raw.attributes, started, exc)
            return _unreadable(location, where, raw, exc)
        self._report("GetObject", location, stored.size, raw.attributes, started)
        if stored.data is None:
            return Fetched(
                location,
                error=errors.PayloadTooLarge(
                    f"{where} has {stored.size} bytes, more than max_payload_size {limit}",
                    bucket=bucket,
                    key=key,
                    raw_body=raw.body,
                    size=stored.size,
                    limit=limit,
                ),
            )
        try:
            body = stored.data.decode()
        except UnicodeDecodeError as exc:
            return Fetched(
                location,
                error=errors.DecodeError(
                    f"{where} is not UTF-8 text: {exc}", raw_body=raw.body, content_type=stored.content_type
                ),
            )
        return Fetched(location, body, _content_type(raw.attributes, stored.content_type))

    # -- settling and declaring -----------------------------------------------------------------------

    async def delete(self, location: PayloadLocation) -> None:
        """Delete a payload whose message is gone; a failure is logged and counted, never raised."""
        try:
            await self._s3.delete_object(location.bucket, location.key)
        except errors.QfanError as exc:
            self.delete_failures += 1
            logger.warning(
                "queue %r: could not delete payload s3://%s/%s (its message is deleted): %s",
                self._queue,
                location.bucket,
                location.key,
                exc,
            )

    async def declare(self, retention: int) -> None:
        """Create the bucket and set the expiry rule, as the policy asks. Idempotent."""
        bucket = self.policy.bucket
        if self.policy.declare_bucket:
            await self._s3.create_bucket(bucket)
        if self.policy.expire_with_retention:
            rule = expiry_rule(self.policy.prefix, retention)
            await self._s3.update_lifecycle_rules(bucket, lambda rules: _with_rule(rules, rule))


def _unreadable(
    location: PayloadLocation, where: str, raw: ReceivedMessage, exc: errors.QfanError
) -> Fetched:
    """A payload S3 did not deliver: missing, unavailable (transient), or refused by S3."""
    bucket, key = location.bucket, location.key
    error: errors.PayloadError
    if isinstance(exc, errors.ObjectNotFound):
        error = errors.PayloadMissing(
            f"{where} does not exist: {exc}", bucket=bucket, key=key, raw_body=raw.body
        )
    else:
        kind = errors.PayloadUnavailable if exc.transient else errors.PayloadError
        error = kind(f"{where} could not be read: {exc}", bucket=bucket, key=key, raw_body=raw.body)
    error.__cause__ = exc
    return Fetched(location, error=error)


async def fetch_all(
    messages: Sequence[ReceivedMessage], payloads: Payloads | None, topics: AcceptedTopics | None = None
) -> list[Fetched | None]:
    """Fetch the payloads of the offloaded messages among ``messages``, concurrently; ``None`` elsewhere.

    On a queue without an offload policy (``payloads`` is ``None``) every pointer is refused unfetched, and
    so is a pointer inside an SNS envelope from a topic outside ``topics``.
    """
    results: list[Fetched | None] = [None] * len(messages)
    pointers = [(index, _pointer_message(raw, topics)) for index, raw in enumerate(messages)]
    if all(raw is None for _, raw in pointers):
        return results

    async def fetch(index: int, raw: ReceivedMessage, payloads: Payloads) -> None:
        results[index] = await payloads.fetch(raw)

    async with anyio.create_task_group() as tg:
        for index, raw in pointers:
            if raw is None:
                continue
            if payloads is None:
                checked = _check_pointer(raw, None)
                assert isinstance(checked, Fetched)
                results[index] = checked
            else:
                tg.start_soon(fetch, index, raw, payloads)
    return results


def _check_pointer(raw: ReceivedMessage, policy: Offload | None) -> PayloadLocation | Fetched:
    """The location a pointer names if the policy lets it be fetched, else the refusal."""
    try:
        location = parse_pointer(raw.body)
    except ValueError as exc:
        invalid = errors.PayloadPointerInvalid(
            f"message {raw.message_id}: {exc}", bucket=None, key=None, raw_body=raw.body
        )
        return Fetched(None, error=invalid)
    why = (
        "the queue has no offload policy" if policy is None else policy.refusal(location.bucket, location.key)
    )
    if why is None:
        return location
    error = errors.PayloadRefused(
        f"message {raw.message_id}: payload s3://{location.bucket}/{location.key} refused: {why}",
        bucket=location.bucket,
        key=location.key,
        raw_body=raw.body,
    )
    return Fetched(location, error=error)


def expiry_rule(prefix: str, retention: int) -> dict[str, Any]:
    """A lifecycle rule expiring objects under ``prefix`` after ``retention`` seconds, in whole days."""
    return {
        "ID": f"qfan-expire:{prefix}"[:255],
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": max(1, math.ceil(retention / _DAY))},
    }


def _with_rule(rules: list[dict[str, Any]], rule: dict[str, Any]) -> list[dict[str, Any]]:
    """``rules`` with ``rule`` in place of the one with its id (kept where it was), or added.

    Queues sharing a prefix share the rule: it keeps the longest expiry any of them asked for.
    """
    for index, existing in enumerate(rules):
        if existing.get("ID") == rule["ID"]:
            days = max(rule["Expiration"]["Days"], int(existing.get("Expiration", {}).get("Days", 0)))
            return [*rules[:index], {**rule, "Expiration": {"Days": days}}, *rules[index + 1 :]]
    return [*rules, rule]


def _content_type(attributes: WireAttributes, stored: str | None) -> str | None:
    """The body's content type: qfan's attribute if a sender set it, else the object's, if it is qfan's.

    Objects AWS's clients write have S3's default type, which says nothing about the body: ``None`` then,
    so the body is read as JSON (or as text by a ``str`` queue), like any foreign message.
    """
    content = attributes.get(CONTENT_TYPE)
    if content is not None and content.string_value:
        return content.string_value
    return stored if stored in _QFAN_CONTENT_TYPES else None
