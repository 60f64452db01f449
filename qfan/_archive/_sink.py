"""The archive worker: a batch handler over the worker engine that buffers records and writes S3 objects.

There is no consume loop here: the worker engine receives (through the inbound pipeline), keeps every held
message invisible (its heartbeat), and deletes what the handler returns as done (its executor). The handler
returns only when the objects holding its messages are in S3, so a message is deleted only after its object
was written. Flow::

    engine --batch of <= 10--> accept: decode, encode a JSON line --> the open buffer
    buffer full (max_bytes / max_records) or max_interval old --> sealed: its opener writes its objects
    every object written --> every handler of the buffer returns --> the engine deletes their messages

Crash safety: a process killed mid-buffer deleted nothing of it; its messages come back after their
visibility timeout and land in a later object. Object names are the buffer's time, first message id and a
sequence number, so a write retried within the process overwrites its object. A message can be archived
twice only if the process dies (or its delete fails) between writing its object and deleting it: at most one
buffer per crash. A copy SQS delivers again while its first copy waits in a buffer, or soon after that
buffer was written (the last 20,000 ids are remembered), is deleted without being written again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import msgspec

from .._exceptions import ChecksumMismatch, MessageError, PayloadError, PayloadUnavailable, QfanError
from .._pipeline._connection import Connection
from .._pipeline._message import Message
from .._resources._queue import Queue
from .._transport import RetryingObjectStore
from .._worker._handler import Handler
from ._config import ArchiveStats, S3Archive
from ._formats import Encoded, ParquetWriter, encode_lines
from ._keys import PartitionError, date_prefix

logger = logging.getLogger("qfan")

_STOP_POLL = 0.2  # how often a filling buffer looks whether the app is stopping (then it is written at once)
_MAX_WRITE_BACKOFF = 60.0
_REMEMBERED = 20_000  # message ids remembered as written: a copy delivered again is deleted, not rewritten
_encoder = msgspec.json.Encoder()


@dataclass(eq=False)
class _Entry:
    """One message in a buffer: its record's JSON line, or why it is an error record."""

    message: Message[Any]
    value: Any = None
    line: bytes = b""
    error: tuple[str, str] | None = None  # (error type, reason)


@dataclass(eq=False)
class _Buffer:
    opened: datetime
    deadline: float
    first_id: str
    entries: list[_Entry] = field(default_factory=list)
    size: int = 0
    sealed: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    error: Exception | None = None  # what stopped it being written (a bug, not S3: S3 is retried)


class Archiver:
    """A registered archive worker (``app.archive``): its settings, its batch handler and its counters.

    Attributes:
        name: the worker's name.
        source: the queue archived.
        sink: the :class:`S3Archive` settings.
        stats: what it has written so far.
        concurrency, prefetch: the worker's sizes: together they hold ``sink.max_records`` messages.
    """

    def __init__(
        self,
        source: Queue[Any],
        sink: S3Archive,
        name: str,
        connect: Callable[[], Connection],
        stopping: Callable[[], bool],
    ) -> None:
        self.name = name
        self.source = source
        self.sink = sink
        self.stats = ArchiveStats()
        self._record_type = source.body_type if sink.type is None else sink.type
        self._template = sink.template
        self._object_name = sink.name or name
        self._parquet = (
            ParquetWriter(self._record_type, sink.compression or "snappy")
            if sink.format == "parquet"
            else None
        )
        self._connect = connect
        self._stopping = stopping
        self._current: _Buffer | None = None
        self._pending: dict[str, _Buffer] = {}  # message id -> the unwritten buffer holding its record
        self._archived: dict[str, None] = {}  # the ids of the last records written, oldest first
        self._bucket_ready = False
        self._bucket_lock = anyio.Lock()
        # Runners each take up to 10 messages and wait with them for their buffer: max_records in all.
        self.concurrency = max(1, -(-sink.max_records // 10))
        self.prefetch = sink.max_records - self.concurrency
        self.handler = Handler(
            self.accept, name, self._record_type, False, True, True, True, takes_poison=True
        )

    # -- buffering ------------------------------------------------------------------------------------

    async def accept(self, messages: list[Message[Any]]) -> list[Message[Any]]:
        """The batch handler: buffer ``messages`` and return once their objects are written.

        Returns the messages to retry (an S3 payload that S3 failed to deliver); the others are done.
        """
        await self._declare_bucket()
        retry: list[Message[Any]] = []
        touched: list[_Buffer] = []
        opened: list[_Buffer] = []
        for message in messages:
            buffer = self._pending.get(message.message_id)
            if buffer is None and message.message_id in self._archived:
                continue  # delivered again after its object was written: only deleted
            if buffer is None:  # (else delivered again while it waits: deleted with its first copy)
                entry = self._entry(message)
                if entry is None:
                    retry.append(message)
                    continue
                buffer = self._buffer_for(len(entry.line), message, opened)
                self._add(buffer, entry)
            if buffer not in touched:
                touched.append(buffer)
        for buffer in opened:  # the handler that opened a buffer writes it (earlier ones are sealed)
            await self._drive(buffer)
        for buffer in touched:
            await buffer.done.wait()
            if buffer.error is not None:  # its messages are retried, like any handler failure's
                raise RuntimeError(f"archive {self.name}: buffer not written") from buffer.error
        return retry

    def _add(self, buffer: _Buffer, entry: _Entry) -> None:
        buffer.entries.append(entry)
        buffer.size += len(entry.line)
        self._pending[entry.message.message_id] = buffer
        self.stats.buffered += 1
        if buffer.size >= self.sink.max_bytes or len(buffer.entries) >= self.sink.max_records:
            self._seal(buffer)

    def _entry(self, message: Message[Any]) -> _Entry | None:
        try:
            value = message.body
        except PayloadUnavailable:
            return None  # transient: S3 did not deliver the payload; the message is retried
        except MessageError as exc:
            return self._failure(message, _error_type(exc), str(exc))
        try:
            line = _encoder.encode(value)
        except (msgspec.EncodeError, TypeError, ValueError, OverflowError) as exc:
            return self._failure(message, "serialise", f"{type(exc).__name__}: {exc}")
        return _Entry(message, value, line)

    @staticmethod
    def _failure(message: Message[Any], error_type: str, reason: str) -> _Entry:
        record = {
            "message_id": message.message_id,
            "error_type": error_type,
            "reason": reason,
            "raw_body": message.raw_body,
            "attributes": message.attributes,
            "sent_at": message.sent_at,
            "queue": message.queue,
        }
        return _Entry(message, line=_encoder.encode(record), error=(error_type, reason))

    def _buffer_for(self, size: int, message: Message[Any], opened: list[_Buffer]) -> _Buffer:
        buffer = self._current
        if buffer is not None and buffer.entries and buffer.size + size > self.sink.max_bytes:
            self._seal(buffer)  # full: this record starts the next buffer
            buffer = None
        if buffer is None:
            buffer = _Buffer(self.sink.clock(), time.monotonic() + self.sink.max_interval, message.message_id)
            self._current = buffer
            opened.append(buffer)
        return buffer

    def _seal(self, buffer: _Buffer) -> None:
        buffer.sealed.set()
        if self._current is buffer:
            self._current = None

    async def _drive(self, buffer: _Buffer) -> None:
        """Wait until ``buffer`` is full, old enough or the app stops; then write it."""
        while not buffer.sealed.is_set():
            remaining = buffer.deadline - time.monotonic()
            if remaining <= 0 or self._stopping():
                break
            with anyio.move_on_after(min(remaining, _STOP_POLL)):
                await buffer.sealed.wait()
        try:
            self._seal(buffer)
            await self._write(buffer)
        except Exception as exc:
            buffer.error = exc
            buffer.done.set()
            raise
        finally:  # written, or cancelled (stopping): no later message may join it either way
            self._seal(buffer)
            self.stats.buffered -= len(buffer.entries)
            for entry in buffer.entries:
                self._pending.pop(entry.message.message_id, None)
        archived = self._archived
        for entry in buffer.entries:
            archived[entry.message.message_id] = None
        while len(archived) > _REMEMBERED:
            del archived[next(iter(archived))]
        buffer.done.set()

    # -- writing --------------------------------------------------------------------------------------

    async def _declare_bucket(self) -> None:
        if self._bucket_ready or not self.sink.declare_bucket:
            return
        async with self._bucket_lock:
            if not self._bucket_ready:
                await self._put_retried(lambda s3: s3.create_bucket(self.sink.bucket), "create bucket")
                self._bucket_ready = True

    async def _write(self, buffer: _Buffer) -> None:
        """Write every object of ``buffer`` (data per partition, then errors per type), each until in."""
        objects = self._objects(buffer)
        for key, encoded, count, is_error in objects:
            content_type = encoded.content_type
            await self._put_retried(
                lambda s3: s3.put_object(self.sink.bucket, key, encoded.data, content_type=content_type),  # noqa: B023 - awaited at once
                key,
            )
            stats = self.stats
            stats.bytes += len(encoded.data)
            stats.recent_keys.append(key)
            if is_error:
                stats.error_objects, stats.error_records = (
                    stats.error_objects + 1,
                    stats.error_records + count,
                )
            else:
                stats.objects, stats.records = stats.objects + 1, stats.records + count
        sent = [e.message.sent_at for e in buffer.entries if e.message.sent_at is not None]
        if sent and objects:
            self.stats.lag = max(0.0, (self.sink.clock() - min(sent)).total_seconds())

    def _objects(self, buffer: _Buffer) -> list[tuple[str, Encoded, int, bool]]:
        """The objects of a buffer: ``(key, encoded, records, is_error)``, named deterministically."""
        partitions: dict[str, list[_Entry]] = {}
        for entry in buffer.entries:
            if entry.error is None:
                try:
                    prefix = self._template.render(buffer.opened, entry.message.attributes, entry.value)
                except PartitionError as exc:
                    self._fail(entry, "partition", str(exc))
                    continue
                partitions.setdefault(prefix, []).append(entry)
        stamp = buffer.opened.strftime("%Y-%m-%d-%H-%M-%S")
        name = f"{self._object_name}-{stamp}-{buffer.first_id}"
        objects: list[tuple[str, Encoded, int, bool]] = []
        for prefix, entries in partitions.items():
            encoded, kept = self._encode(entries)
            if encoded is not None:
                key = f"{self.sink.prefix}{prefix}{name}-{len(objects)}{encoded.extension}"
                objects.append((key, encoded, kept, False))
        errors: dict[str, list[bytes]] = {}
        for entry in buffer.entries:
            if entry.error is not None:
                errors.setdefault(entry.error[0], []).append(entry.line)
        for error_type, lines in errors.items():
            encoded = encode_lines(lines, self.sink.compression)
            path = f"{self.sink.error_prefix}{error_type}/{date_prefix(buffer.opened)}"
            objects.append((f"{path}{name}-{len(objects)}{encoded.extension}", encoded, len(lines), True))
        return objects

    def _encode(self, entries: list[_Entry]) -> tuple[Encoded | None, int]:
        """One partition's object, and how many records it holds (records Parquet refuses become errors)."""
        if self._parquet is None:
            return encode_lines([e.line for e in entries], self.sink.compression), len(entries)
        rows = [self._parquet.row(e.value) for e in entries]
        encoded, refused = self._parquet.encode(rows)
        for index, reason in refused.items():
            self._fail(entries[index], "serialise", reason)
        return encoded, len(entries) - len(refused)

    def _fail(self, entry: _Entry, error_type: str, reason: str) -> None:
        failed = self._failure(entry.message, error_type, reason)
        entry.line, entry.error = failed.line, failed.error

    async def _put_retried(self, call: Callable[[RetryingObjectStore], Awaitable[None]], what: str) -> None:
        """Run an S3 call until it succeeds: the plane retries transient errors, this retries the rest
        with backoff (forever: nothing of the buffer is deleted meanwhile; stopping cancels it)."""
        failures = 0
        while True:
            try:
                s3 = await self._connect().s3()
                await call(s3)
                return
            except QfanError as exc:
                failures += 1
                self.stats.write_failures += 1
                delay = min(_MAX_WRITE_BACKOFF, 0.5 * 2 ** min(failures, 8))
                logger.warning(
                    "archive %s: %s failed (%s: %s), retrying in %.1fs",
                    self.name,
                    what,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await anyio.sleep(delay)


def _error_type(exc: MessageError) -> str:
    """The error prefix's ``{error-type}`` folder for a message whose body cannot be had."""
    if isinstance(exc, ChecksumMismatch):
        return "checksum"
    if isinstance(exc, PayloadError):
        return "payload"
    return "decode"
