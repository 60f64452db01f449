"""The request/response wire protocol: the attribute names, the reply queues' names, tags and limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

RESPONSE_QUEUE_URL = "ResponseQueueUrl"
"""The reply address a request carries (the name AWS's Java temporary-queues client uses)."""
CORRELATION_ID = "qfan-correlation-id"
ERROR_TYPE = "qfan-error-type"
REPLY_PREFIX = "qfan-reply-"
OWNER_TAG = "qfan:owner"
HEARTBEAT_TAG = "qfan:heartbeat"
HEARTBEAT_SECONDS = 60.0
MIN_SWEEP_IDLE = 3 * HEARTBEAT_SECONDS
"""The shortest idle time a sweep accepts: three missed heartbeats, so a slow tag call never looks dead."""
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


def now() -> str:
    """The heartbeat tag's value: the current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
