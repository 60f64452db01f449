"""The one exception tree of qfan.

Everything qfan raises derives from :class:`QfanError`::

    QfanError
    ├── ConfigError                 bad option, range or combination (raised before any I/O)
    │   ├── EmulatorUnavailable     a local emulator is not installed or did not come up (log tail)
    │   └── ResourceConflict        an existing resource's attributes differ from the declaration
    │       ├── QueueConflict
    │       └── TopicConflict
    ├── MessageError                a problem with one message, found on this side of the wire
    │   ├── EncodeError             the value cannot be encoded
    │   ├── DecodeError             the body cannot be decoded into the wanted type (keeps the raw body)
    │   │   └── EnvelopeRefused     an SNS envelope from a topic the queue is not subscribed to
    │   ├── MessageTooLarge         body + attributes exceed MaximumMessageSize (or max_payload_size)
    │   ├── ChecksumMismatch        the MD5 SQS reported differs from what was sent or received
    │   └── PayloadError            an offloaded (S3) payload cannot be read; keeps bucket and key
    │       ├── PayloadRefused      outside the offload policy (bucket, prefix, key): not fetched, not deleted
    │       ├── PayloadMissing      the S3 object does not exist (any more)
    │       ├── PayloadTooLarge     the S3 object exceeds the policy's max_payload_size
    │       ├── PayloadUnavailable  S3 failed to deliver it even after retries (transient)
    │       └── PayloadPointerInvalid   the pointer body is malformed
    ├── BatchSendError              some messages of a send_many were not sent; says which
    ├── RequestTimeout              no reply to ``app.request`` in time
    ├── RemoteError                 the responder raised; keeps the remote type and message
    ├── HandlerOutcome              raised by a worker's handler to decide its message's fate
    │   ├── Retry                   retry later (after ``delay`` seconds, else the worker's backoff)
    │   │   └── CircuitOpen         the worker's circuit breaker is open: back later, never dead-lettered
    │   ├── Reject                  dead-letter now, with a reason
    │   └── Ack                     done: delete the message (stops the handler early)
    ├── TransportError              the connection failed before an answer arrived (transient)
    └── AwsError                    AWS answered with an error; keeps ``code`` and ``request_id``
        ├── QueueNotFound
        ├── QueueNameExists         CreateQueue raced with a different declaration
        ├── AccessDenied
        ├── InvalidParameter
        ├── BatchTooLarge
        ├── ReceiptHandleInvalid    the receipt handle is malformed or its message is no longer in flight
        ├── ObjectNotFound          S3: no such bucket or key
        ├── RedirectRefused         the endpoint answered 3xx: never followed, so credentials stay put
        ├── Throttled               (transient)
        └── ServiceUnavailable      5xx, internal errors (transient)

AWS error codes are turned into these classes in exactly one place:
:func:`qfan._transport._errors.error_for_code`. Transient errors (``TransportError``, ``Throttled``,
``ServiceUnavailable``) have ``transient = True`` and are retried by the transport's retry policy
before they reach user code.
"""

from __future__ import annotations

from collections.abc import Mapping


class QfanError(Exception):
    """Base class of every error qfan raises."""

    #: Whether retrying the same request later may succeed.
    transient: bool = False


class ConfigError(QfanError, ValueError):
    """An option is out of range, inconsistent, or otherwise unusable."""


class EmulatorUnavailable(ConfigError):
    """A local emulator cannot run here: its package is missing, or it did not come up.

    When it was started and failed, the message ends with the tail of its log.
    """


class ResourceConflict(ConfigError):
    """An existing queue or topic has attributes that differ from its declaration.

    Attributes:
        kind: ``"queue"`` or ``"topic"``.
        name: the resource name.
        differences: attribute name -> (declared value, existing value).
    """

    kind = "resource"

    def __init__(self, name: str, differences: Mapping[str, tuple[str | None, str | None]]) -> None:
        self.name = name
        self.differences = dict(differences)
        listed = ", ".join(
            f"{attribute}: declared {want!r}, existing {have!r}"
            for attribute, (want, have) in sorted(self.differences.items())
        )
        super().__init__(
            f"{self.kind} {name!r} exists with different attributes ({listed}); "
            f"change the declaration{self._remedy}"
        )

    _remedy = ""


class QueueConflict(ResourceConflict):
    """An existing queue's attributes differ from what the declaration asks for."""

    kind = "queue"
    _remedy = ", or declare with on_conflict='update' to update the queue"

    @property
    def queue(self) -> str:
        """The queue name."""
        return self.name


class TopicConflict(ResourceConflict):
    """An existing topic's attributes differ from what the declaration asks for."""

    kind = "topic"


class MessageError(QfanError):
    """A problem with one message, detected by qfan."""


class EncodeError(MessageError, TypeError):
    """The value cannot be encoded into a message body."""


class DecodeError(MessageError, ValueError):
    """A message body cannot be decoded into the wanted type.

    Attributes:
        raw_body: the body exactly as it came off the queue.
        content_type: the content type the body claimed (``None`` when absent).
    """

    def __init__(self, message: str, *, raw_body: str, content_type: str | None) -> None:
        super().__init__(message)
        self.raw_body = raw_body
        self.content_type = content_type


class EnvelopeRefused(DecodeError):
    """An SNS envelope names a topic the queue is not subscribed to (or is no topic ARN at all).

    On a queue that :meth:`qfan.App.subscribe` subscribed to topics (or that was told of them with
    :meth:`qfan.Queue.accept_topic`), anyone able to send to the queue could otherwise forge an envelope
    claiming any topic and attributes. Workers dead-letter such a message with the reason.

    Attributes:
        topic_arn: the ``TopicArn`` the envelope claims.
    """

    def __init__(self, message: str, *, raw_body: str, topic_arn: str) -> None:
        super().__init__(message, raw_body=raw_body, content_type=None)
        self.topic_arn = topic_arn


class MessageTooLarge(MessageError):
    """Body plus attributes exceed what the queue accepts (or, offloaded, what its policy stores).

    Attributes:
        size: the message's size in bytes (body + attribute names, types and values).
        limit: the queue's ``MaximumMessageSize`` (or the offload policy's ``max_payload_size``).
    """

    def __init__(self, size: int, limit: int, queue: str, *, what: str = "MaximumMessageSize") -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"message of {size} bytes (body + attributes) exceeds the {limit}-byte {what} of queue {queue!r}"
        )


class ChecksumMismatch(MessageError):
    """An MD5 digest reported by SQS does not match the message's content."""


class PayloadError(MessageError):
    """An offloaded message's payload (its body, stored in S3) cannot be read.

    Raised when the message's ``body`` is accessed, so one bad message never affects the others received
    with it.

    Attributes:
        bucket: the S3 bucket the pointer names (``None`` when the pointer is unreadable).
        key: the S3 key the pointer names (``None`` when the pointer is unreadable).
        raw_body: the pointer body exactly as it came off the queue.
    """

    def __init__(self, message: str, *, bucket: str | None, key: str | None, raw_body: str) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.key = key
        self.raw_body = raw_body


class PayloadRefused(PayloadError):
    """The pointer names a place the offload policy does not allow: a bucket outside ``allowed_buckets``,
    a key outside the allowed prefix, or a key with ``.``/``..`` segments (or other characters that might
    resolve elsewhere). The object was neither fetched nor deleted."""


class PayloadMissing(PayloadError):
    """The S3 object the pointer names does not exist (deleted, expired, or never written)."""


class PayloadTooLarge(PayloadError):
    """The S3 object is larger than the policy's ``max_payload_size``; it was not read.

    Attributes:
        size: the object's size in bytes.
        limit: the policy's ``max_payload_size``.
    """

    def __init__(self, message: str, *, bucket: str, key: str, raw_body: str, size: int, limit: int) -> None:
        super().__init__(message, bucket=bucket, key=key, raw_body=raw_body)
        self.size = size
        self.limit = limit


class PayloadUnavailable(PayloadError):
    """S3 did not deliver the payload even after retries (throttled, unavailable, connection lost).

    Transient: the message is likely readable when it is delivered again; workers retry it rather than
    dead-lettering it.
    """

    transient = True


class PayloadPointerInvalid(PayloadError):
    """The message carries the offload marker but its body is not a valid S3 pointer."""


class BatchSendError(QfanError):
    """Some messages of a ``send_many`` call were not sent.

    Attributes:
        results: one entry per value, in order: the message id, or the error that value ended with.
        errors: index -> error, for the values that were not sent.
    """

    def __init__(self, results: list[str | QfanError]) -> None:
        self.results = results
        self.errors = {i: r for i, r in enumerate(results) if isinstance(r, QfanError)}
        first_index, first = next(iter(self.errors.items()))
        super().__init__(
            f"{len(self.errors)} of {len(results)} messages were not sent "
            f"(first: #{first_index}: {type(first).__name__}: {first})"
        )


class RequestTimeout(QfanError, TimeoutError):
    """No reply arrived within the request's timeout (a late reply is dropped and counted)."""


class RemoteError(QfanError):
    """The responder's handler raised instead of answering.

    Attributes:
        remote_type: the exception's type name on the responder's side.
        remote_message: its message with ``expose_errors=True``, else a note that it was withheld.
        correlation_id: the request's correlation id, to find the responder's log line.
    """

    def __init__(self, remote_type: str, remote_message: str, *, correlation_id: str | None = None) -> None:
        super().__init__(f"{remote_type}: {remote_message}")
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.correlation_id = correlation_id


class HandlerOutcome(QfanError):
    """Base of the exceptions a worker's handler raises to settle its message on purpose."""


class Retry(HandlerOutcome):
    """Handle this message again later.

    Args:
        delay: seconds until it is visible again (0 .. 12 h); ``None`` uses the worker's backoff.
    """

    def __init__(self, delay: int | None = None) -> None:
        super().__init__(f"retry requested (delay={delay})")
        self.delay = delay


class CircuitOpen(Retry):
    """A worker's circuit breaker held the message back, or its failure tripped the breaker: retried later."""


class Reject(HandlerOutcome):
    """Dead-letter this message now, without further attempts; ``reason`` travels with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ack(HandlerOutcome):
    """The message is done: delete it (the same as returning normally, usable from deep inside)."""


class TransportError(QfanError):
    """The request did not get an answer: connection refused, reset, timed out."""

    transient = True


class AwsError(QfanError):
    """AWS (or the emulator) answered a request with an error.

    Attributes:
        code: the AWS error code, e.g. ``"AWS.SimpleQueueService.NonExistentQueue"``.
        request_id: the AWS request id, for support cases (``None`` when not known).
        operation: the API operation, e.g. ``"SendMessageBatch"``.
        sender_fault: whether AWS blames the request (``None`` when not known).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        request_id: str | None = None,
        operation: str | None = None,
        sender_fault: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.request_id = request_id
        self.operation = operation
        self.sender_fault = sender_fault


class QueueNotFound(AwsError):
    """The queue does not exist (or is not visible to these credentials)."""


class QueueNameExists(AwsError):
    """A queue with this name already exists with different attributes."""


class AccessDenied(AwsError):
    """The credentials are not allowed to perform the operation."""


class InvalidParameter(AwsError):
    """AWS rejected a parameter value, attribute or combination."""


class BatchTooLarge(AwsError):
    """The batch's total size exceeds the limit."""


class ReceiptHandleInvalid(AwsError):
    """The receipt handle is malformed, or its message is no longer in flight (it expired)."""


class ObjectNotFound(AwsError):
    """S3 has no such bucket or no such key."""


class RedirectRefused(AwsError):
    """The endpoint answered a request with a redirect (3xx), and qfan does not follow redirects.

    Following one would re-send the signed request (session token included) wherever ``Location`` points;
    AWS never redirects these calls (a misconfigured endpoint or proxy, or an attacker): not transient.

    Attributes:
        status: the HTTP status of the answer (301, 302, 307, ...).
        location: the ``Location`` header the endpoint answered with (``None`` when it sent none).
    """

    def __init__(
        self,
        *,
        status: int,
        location: str | None,
        operation: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            f"the endpoint redirected to {location!r} (HTTP {status}); qfan never follows redirects",
            code=str(status),
            request_id=request_id,
            operation=operation,
        )
        self.status = status
        self.location = location


class Throttled(AwsError):
    """AWS throttled the request."""

    transient = True


class ServiceUnavailable(AwsError):
    """AWS failed internally (5xx)."""

    transient = True
