"""qfan: async, typed, batching messaging on AWS SQS that never loses a message (large bodies via S3).

The public API is exactly what ``__all__`` lists; everything in underscored modules is private.
"""

from ._app._app import App
from ._exceptions import (
    AccessDenied,
    Ack,
    AwsError,
    BatchSendError,
    BatchTooLarge,
    ChecksumMismatch,
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
from ._local import LocalEmulator, local
from ._pipeline._hooks import PipelineHooks
from ._pipeline._message import Message
from ._pipeline._offload import Offload
from ._resources._consumer import Consumer
from ._resources._declaration import QueueInfo
from ._resources._priority import PriorityQueue
from ._resources._queue import Queue
from ._resources._queue_options import Encryption, KmsEncryption, SqsManagedEncryption
from ._resources._subscription import Subscription
from ._resources._topic import Topic, TopicInfo
from ._resources._topology import PlanItem
from ._rpc import RpcStats
from ._telemetry import Telemetry
from ._transport import RedactingFilter, RetryPolicy, install_redaction
from ._wire._attributes import AttributeValue
from ._wire._codec import Format
from ._wire._envelope import SnsEnvelope
from ._wire._pointer import PayloadLocation
from ._worker._backoff import Backoff
from ._worker._worker import Middleware, Worker, WorkerStats

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "Ack",
    "App",
    "AttributeValue",
    "AwsError",
    "Backoff",
    "BatchSendError",
    "BatchTooLarge",
    "ChecksumMismatch",
    "ConfigError",
    "Consumer",
    "DecodeError",
    "EmulatorUnavailable",
    "EncodeError",
    "Encryption",
    "EnvelopeRefused",
    "Format",
    "HandlerOutcome",
    "InvalidParameter",
    "KmsEncryption",
    "LocalEmulator",
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
    "ServiceUnavailable",
    "SnsEnvelope",
    "SqsManagedEncryption",
    "Subscription",
    "Telemetry",
    "Throttled",
    "Topic",
    "TopicConflict",
    "TopicInfo",
    "TransportError",
    "Worker",
    "WorkerStats",
    "__version__",
    "install_redaction",
    "local",
]
