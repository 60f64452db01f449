"""qfan: async, typed, batching messaging on AWS SQS that never loses a message (large bodies via S3).

The public API is exactly what ``__all__`` lists; everything in underscored modules is private.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._app._app import App
from ._exceptions import (
    AccessDenied,
    Ack,
    AwsError,
    BatchSendError,
    BatchTooLarge,
    ChecksumMismatch,
    CircuitOpen,
    ConfigError,
    DecodeError,
    EmulatorUnavailable,
    EncodeError,
    EnvelopeRefused,
    HandlerOutcome,
    InvalidParameter,
    MessageError,
    MessageTooLarge,
    ObjectNotFound,
    PayloadError,
    PayloadMissing,
    PayloadPointerInvalid,
    PayloadRefused,
    PayloadTooLarge,
    PayloadUnavailable,
    QfanError,
    QueueConflict,
    QueueNameExists,
    QueueNotFound,
    ReceiptHandleInvalid,
    RedirectRefused,
    Reject,
    RemoteError,
    RequestTimeout,
    ResourceConflict,
    Retry,
    ServiceUnavailable,
    Throttled,
    TopicConflict,
    TransportError,
)
from ._lambda import LambdaHandler, TopicHandler
from ._local import local
from ._pipeline._delays import LongDelays
from ._pipeline._hooks import PipelineHooks
from ._pipeline._message import Message
from ._pipeline._offload import Offload
from ._resources._consumer import Consumer
from ._resources._declaration import QueueInfo
from ._resources._idempotency import (
    DynamoDBIdempotencyStore,
    IdempotencyRecord,
    IdempotencyStore,
    MemoryIdempotencyStore,
)
from ._resources._priority import PriorityQueue
from ._resources._queue import Queue
from ._resources._queue_options import Encryption, KmsEncryption, SqsManagedEncryption
from ._resources._subscription import Subscription
from ._resources._topic import Topic, TopicInfo
from ._resources._topology import PlanItem
from ._rpc import RpcStats
from ._transport import RedactingFilter, RetryPolicy, install_redaction
from ._wire._attributes import AttributeValue
from ._wire._codec import Format
from ._wire._envelope import SnsEnvelope
from ._wire._pointer import PayloadLocation
from ._worker._backoff import Backoff
from ._worker._flow import CircuitBreaker, RateLimit
from ._worker._idempotency import Idempotency, IdempotencyStats
from ._worker._worker import Middleware, Worker, WorkerStats

if TYPE_CHECKING:
    from ._archive import Archiver, ArchiveStats, S3Archive, parquet_schema

    #: A running embedded emulator: the launcher's one record (endpoint, region, environment, which it is).
    from ._emulators import RunningEmulator as LocalEmulator
    from ._telemetry import Telemetry

# Loaded on first use, not by ``import qfan`` (a Lambda cold start pays for every module it imports).
_LAZY = {
    "Archiver": ("._archive", "Archiver"),
    "ArchiveStats": ("._archive", "ArchiveStats"),
    "S3Archive": ("._archive", "S3Archive"),
    "parquet_schema": ("._archive", "parquet_schema"),
    "LocalEmulator": ("._emulators", "RunningEmulator"),
    "Telemetry": ("._telemetry", "Telemetry"),
}

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value  # once
    return value


__all__ = [
    "AccessDenied",
    "Ack",
    "App",
    "ArchiveStats",
    "Archiver",
    "AttributeValue",
    "AwsError",
    "Backoff",
    "BatchSendError",
    "BatchTooLarge",
    "ChecksumMismatch",
    "CircuitBreaker",
    "CircuitOpen",
    "ConfigError",
    "Consumer",
    "DecodeError",
    "DynamoDBIdempotencyStore",
    "EmulatorUnavailable",
    "EncodeError",
    "Encryption",
    "EnvelopeRefused",
    "Format",
    "HandlerOutcome",
    "Idempotency",
    "IdempotencyRecord",
    "IdempotencyStats",
    "IdempotencyStore",
    "InvalidParameter",
    "KmsEncryption",
    "LambdaHandler",
    "LocalEmulator",
    "LongDelays",
    "MemoryIdempotencyStore",
    "Message",
    "MessageError",
    "MessageTooLarge",
    "Middleware",
    "ObjectNotFound",
    "Offload",
    "PayloadError",
    "PayloadLocation",
    "PayloadMissing",
    "PayloadPointerInvalid",
    "PayloadRefused",
    "PayloadTooLarge",
    "PayloadUnavailable",
    "PipelineHooks",
    "PlanItem",
    "PriorityQueue",
    "QfanError",
    "Queue",
    "QueueConflict",
    "QueueInfo",
    "QueueNameExists",
    "QueueNotFound",
    "RateLimit",
    "ReceiptHandleInvalid",
    "RedactingFilter",
    "RedirectRefused",
    "Reject",
    "RemoteError",
    "RequestTimeout",
    "ResourceConflict",
    "Retry",
    "RetryPolicy",
    "RpcStats",
    "S3Archive",
    "ServiceUnavailable",
    "SnsEnvelope",
    "SqsManagedEncryption",
    "Subscription",
    "Telemetry",
    "Throttled",
    "Topic",
    "TopicConflict",
    "TopicHandler",
    "TopicInfo",
    "TransportError",
    "Worker",
    "WorkerStats",
    "__version__",
    "install_redaction",
    "local",
    "parquet_schema",
]
