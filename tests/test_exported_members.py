"""The public API is exactly what qfan.__all__ lists, and every name in it is importable."""

import qfan

EXPECTED = {
    "CircuitBreaker",
    "CircuitOpen",
    "DynamoDBIdempotencyStore",
    "Idempotency",
    "IdempotencyRecord",
    "IdempotencyStats",
    "IdempotencyStore",
    "LongDelays",
    "MemoryIdempotencyStore",
    "RateLimit",
    "RemoteError",
    "RequestTimeout",
    "RpcStats",
    "SnsEnvelope",
    "Subscription",
    "Topic",
    "TopicInfo",
    "PipelineHooks",
    "Telemetry",
    "PlanItem",
    "PriorityQueue",
    "ResourceConflict",
    "TopicConflict",
    "TopicHandler",
    "Ack",
    "Backoff",
    "HandlerOutcome",
    "Reject",
    "Retry",
    "Middleware",
    "Worker",
    "WorkerStats",
    "AccessDenied",
    "App",
    "ArchiveStats",
    "Archiver",
    "S3Archive",
    "parquet_schema",
    "AttributeValue",
    "AwsError",
    "BatchSendError",
    "BatchTooLarge",
    "ChecksumMismatch",
    "ConfigError",
    "Consumer",
    "DecodeError",
    "EncodeError",
    "EmulatorUnavailable",
    "EnvelopeRefused",
    "Encryption",
    "Format",
    "InvalidParameter",
    "KmsEncryption",
    "LambdaHandler",
    "LocalEmulator",
    "Message",
    "MessageError",
    "MessageTooLarge",
    "ObjectNotFound",
    "Offload",
    "PayloadError",
    "PayloadLocation",
    "PayloadMissing",
    "PayloadPointerInvalid",
    "PayloadRefused",
    "PayloadTooLarge",
    "PayloadUnavailable",
    "QfanError",
    "Queue",
    "QueueConflict",
    "QueueInfo",
    "QueueNameExists",
    "QueueNotFound",
    "ReceiptHandleInvalid",
    "RedactingFilter",
    "RedirectRefused",
    "RetryPolicy",
    "ServiceUnavailable",
    "SqsManagedEncryption",
    "Throttled",
    "TransportError",
    "__version__",
    "install_redaction",
    "local",
}


def test_all_is_pinned() -> None:
    assert set(qfan.__all__) == EXPECTED
    assert len(qfan.__all__) == len(EXPECTED), "no duplicates in __all__"


def test_every_exported_name_exists() -> None:
    for name in qfan.__all__:
        assert hasattr(qfan, name), name


def test_every_exception_is_in_the_one_tree() -> None:
    exceptions = [
        getattr(qfan, name)
        for name in qfan.__all__
        if isinstance(getattr(qfan, name), type) and issubclass(getattr(qfan, name), BaseException)
    ]
    assert len(exceptions) >= 24
    assert all(issubclass(exc, qfan.QfanError) for exc in exceptions)
