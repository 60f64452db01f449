"""Sweeping reply queues left behind by crashed requesters: only those whose heartbeat stopped."""

from __future__ import annotations

import time
from datetime import datetime

from .._exceptions import ConfigError
from .._pipeline._connection import Connection
from ._protocol import HEARTBEAT_SECONDS, HEARTBEAT_TAG, MIN_SWEEP_IDLE, REPLY_PREFIX


def check_sweep_idle(idle_seconds: float) -> None:
    """Refuse an idle time under :data:`MIN_SWEEP_IDLE`: a live requester's heartbeat may be that old."""
    if isinstance(idle_seconds, bool) or not isinstance(idle_seconds, int | float):
        raise ConfigError(f"idle seconds must be a number, got {idle_seconds!r}")
    if not idle_seconds >= MIN_SWEEP_IDLE:
        raise ConfigError(
            f"idle {idle_seconds} s is too short to tell a crashed requester from a live one: reply queues "
            f"refresh their heartbeat every {HEARTBEAT_SECONDS:.0f} s, so the least is {MIN_SWEEP_IDLE:.0f} s"
        )


async def sweep_reply_queues(conn: Connection, idle_seconds: float, keep: str | None = None) -> list[str]:
    """Delete reply queues whose heartbeat is older than ``idle_seconds`` (left by crashed processes).

    A live requester refreshes its heartbeat tag every ``HEARTBEAT_SECONDS``, so only queues whose owner
    stopped doing so for ``idle_seconds`` (at least ``MIN_SWEEP_IDLE``, else ``ConfigError``) go. Returns
    the URLs deleted. A reply queue without a readable heartbeat tag is left alone.
    """
    check_sweep_idle(idle_seconds)
    deleted: list[str] = []
    for url in await conn.sqs.list_queues(REPLY_PREFIX):
        if keep is not None and url == keep:
            continue
        tags = await conn.sqs.list_queue_tags(url)
        try:
            heartbeat = datetime.fromisoformat(tags[HEARTBEAT_TAG])
        except (KeyError, ValueError):
            continue
        if time.time() - heartbeat.timestamp() > idle_seconds:
            await conn.sqs.delete_queue(url)
            deleted.append(url)
    return deleted
