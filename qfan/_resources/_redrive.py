"""Moving messages between queues without losing any: copy first, delete the original after.

A dead-letter queue holds two kinds of message. qfan's own dead letters are *copies* (sent by the worker
with the reason attributes, ``dead-letter-source`` naming the queue it came from): SQS cannot move these
back by itself (its move task fails on a message it did not dead-letter), so :func:`redrive` copies each
one back to its source and deletes it. Messages SQS dead-lettered itself (its redrive policy, e.g. a
worker that died mid-message) carry no such attribute: they go back with SQS's own move task, which
:func:`redrive` follows to its end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio

from .._exceptions import AwsError, ConfigError, QfanError
from .._pipeline._message import Message
from .._transport import MoveTask
from ._queue import Queue

#: Attributes qfan adds when it dead-letters a message; a redrive removes them again.
DEAD_LETTER_ATTRIBUTES = (
    "dead-letter-reason",
    "dead-letter-error",
    "dead-letter-receive-count",
    "dead-letter-source",
)
_SOURCE = DEAD_LETTER_ATTRIBUTES[3]
_HOLD = 300  # seconds a received message stays invisible while a scan runs (or until it is given back)
_ENDED = ("COMPLETED", "FAILED", "CANCELLED")


async def move_messages(source: Queue[Any], target: Queue[Any], *, limit: int | None = None) -> int:
    """Move messages from ``source`` to ``target`` until ``source`` looks empty (or ``limit`` moved).

    Each message is copied to ``target`` (without qfan's dead-letter attributes) and only then deleted
    from ``source``: a failure between the two leaves a duplicate, never a loss. Returns how many moved.
    """
    moved, _ = await _scan(source, lambda _: target, limit=limit)
    return sum(moved.values())


async def _scan(
    dead: Queue[Any], target_of: Callable[[str | None], Queue[Any] | None], *, limit: int | None = None
) -> tuple[Counter[str], list[Message[Any]]]:
    """Receive ``dead`` until it looks empty: copy each message to ``target_of(its dead-letter-source)``
    and delete it; messages without a target are kept (invisible) and returned, for the caller to give
    back. Returns how many moved per target queue name, and the kept messages."""
    moved: Counter[str] = Counter()
    kept: list[Message[Any]] = []

    async def move(message: Message[Any], target: Queue[Any]) -> None:
        await target.forward(message, exclude=DEAD_LETTER_ATTRIBUTES)
        await message.ack()
        moved[target.name] += 1

    while limit is None or sum(moved.values()) < limit:
        wanted = 10 if limit is None else min(10, limit - sum(moved.values()))
        batch = await dead.receive(wanted, wait=1, visibility=_HOLD)
        if not batch:
            break
        async with anyio.create_task_group() as tg:
            for message in batch:
                source = message.attributes.get(_SOURCE)
                target = target_of(source if isinstance(source, str) else None)
                if target is None:
                    kept.append(message)
                else:
                    tg.start_soon(move, message, target)
    return moved, kept


async def redrive(
    dead: Queue[Any],
    queue_named: Callable[[str], Queue[Any]],
    *,
    log: Callable[[str], None],
    limit: int | None = None,
    poll: float = 1.0,
) -> Counter[str]:
    """Return every message of the dead-letter queue ``dead`` to the queue it came from.

    qfan's own dead letters are copied back to their ``dead-letter-source`` (``queue_named(name)``; without
    the reason attributes) and deleted. Messages SQS dead-lettered itself go back with SQS's move task,
    which is followed to its end (progress through ``log``, every ``poll`` seconds); where SQS has no move
    tasks (emulators) they are copied to the one queue whose redrive policy names ``dead``.

    Returns how many were moved per queue (a move task's count under ``"(SQS move task)"``).

    Raises:
        QfanError: the move task failed or was cancelled (with SQS's reason); what it did not move stays.
        ConfigError: SQS has no move tasks and ``dead`` is the dead-letter queue of several queues.
    """
    targets: dict[str, Queue[Any]] = {}

    def own(source: str | None) -> Queue[Any] | None:
        if source is None:
            return None
        if source not in targets:
            targets[source] = queue_named(source)
        return targets[source]

    moved, native = await _scan(dead, own, limit=limit)
    for name, count in sorted(moved.items()):
        log(f"moved {count} qfan dead letter(s) back to {name}")
    if not native:
        return moved
    await _give_back(native)
    try:
        handle = await dead.start_move_task()
    except AwsError as exc:  # StartMessageMoveTask missing (emulators): copy them, there is one source
        try:
            sources = await dead.dead_letter_sources()
        except AwsError as unlisted:
            raise ConfigError(
                f"SQS could neither start a move task ({exc.code}) nor list the queues whose dead-letter "
                f"queue {dead.name!r} is ({unlisted.code}): name the target with --to"
            ) from unlisted
        if len(sources) != 1:
            raise ConfigError(
                f"SQS could not start a move task ({exc.code}) for the {len(native)} message(s) SQS itself "
                f"dead-lettered, and {dead.name!r} is the dead-letter queue of {len(sources)} queues: "
                "name the target with --to"
            ) from exc
        fallback = queue_named(sources[0].rstrip("/").rpartition("/")[2])
        more, _ = await _scan(dead, lambda source: own(source) if source else fallback, limit=limit)
        log(
            f"SQS has no move tasks here ({exc.code}): "
            f"copied {more[fallback.name]} message(s) to {fallback.name}"
        )
        return moved + more
    log(f"started SQS message move task for {len(native)} message(s) SQS dead-lettered: {handle}")
    task = await follow_move_task(dead, handle, log=log, poll=poll)
    moved["(SQS move task)"] += task.moved
    return moved


async def _give_back(messages: list[Message[Any]]) -> None:
    async with anyio.create_task_group() as tg:
        for message in messages:
            tg.start_soon(message.nack, 0)


async def follow_move_task(
    dead: Queue[Any], handle: str, *, log: Callable[[str], None], poll: float = 1.0
) -> MoveTask:
    """Poll ``ListMessageMoveTasks`` until the task ends, logging its progress; returns the ended task.

    Raises:
        QfanError: it ended ``FAILED`` or ``CANCELLED`` (with SQS's reason).
    """
    said = ""
    while True:
        tasks = await dead.move_tasks()
        task = next((t for t in tasks if t.handle == handle), tasks[0] if tasks else None)
        if task is not None:
            total = "?" if task.to_move is None else str(task.to_move)
            line = f"move task {task.status}: {task.moved} of {total} moved"
            if line != said:
                log(line)
                said = line
            if task.status in _ENDED:
                if task.status != "COMPLETED":
                    reason = task.failure_reason or "no reason given"
                    raise QfanError(
                        f"SQS message move task from {dead.name} {task.status} after moving {task.moved} "
                        f"message(s): {reason}; the rest are still in {dead.name}"
                    )
                return task
        await anyio.sleep(poll)
