"""Option validation, endpoint resolution and error-code mapping: checked before any I/O."""

from typing import Any

import pytest

import qfan
from qfan._transport import RetryPolicy, error_for_code, resolve_endpoint
from qfan._wire._attributes import to_wire, wire_size


def test_endpoint_precedence() -> None:
    env = {"AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_SQS": "http://sqs"}
    assert resolve_endpoint("sqs", "http://explicit", env) == "http://explicit"
    assert resolve_endpoint("sqs", None, env) == "http://sqs"
    assert resolve_endpoint("sns", None, env) == "http://all"
    assert resolve_endpoint("sqs", None, {}) is None
    ignored = {**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert resolve_endpoint("sqs", None, ignored) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retention": 14 * 24 * 3600 + 1}, "retention must be between 60 and 1209600"),
        ({"visibility_timeout": -1}, "visibility_timeout"),
        ({"receive_wait": 21}, "receive_wait"),
        ({"delay": 901}, "delay"),
        ({"max_message_size": 2 * 1024 * 1024}, "max_message_size"),
        ({"max_receives": 0}, "max_receives"),
        ({"content_based_dedup": True}, "need a FIFO queue"),
        ({"fifo": True}, "must end in '.fifo'"),
        ({"on_conflict": "ignore"}, "on_conflict"),
    ],
)
def test_queue_options_are_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(qfan.ConfigError, match=message):
        qfan.App().queue("jobs", **options)


def test_bad_queue_names() -> None:
    app = qfan.App()
    for name in ("", "a" * 81, "has space", "dots.in.name"):
        with pytest.raises(qfan.ConfigError):
            app.queue(name)


def test_dead_letter_must_match_kind() -> None:
    app = qfan.App()
    with pytest.raises(qfan.ConfigError, match="FIFO"):
        app.queue("jobs.fifo", dead_letter=app.queue("dlq"))


def test_queue_registered_twice() -> None:
    app = qfan.App()
    app.queue("jobs")
    with pytest.raises(qfan.ConfigError, match="already registered"):
        app.queue("jobs")


def test_using_a_queue_before_the_app_is_open() -> None:
    import anyio

    queue = qfan.App().queue("jobs")
    with pytest.raises(qfan.QfanError, match="not open"):
        anyio.run(queue.declare)


def test_kms_reuse_period_range() -> None:
    with pytest.raises(qfan.ConfigError, match="data_key_reuse_seconds"):
        qfan.KmsEncryption("alias/x", data_key_reuse_seconds=10)


def test_retry_policy_validation() -> None:
    with pytest.raises(qfan.ConfigError):
        RetryPolicy(attempts=0)
    with pytest.raises(qfan.ConfigError):
        RetryPolicy(initial_wait=2, max_wait=1)


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("AWS.SimpleQueueService.NonExistentQueue", 400, qfan.QueueNotFound),
        ("com.amazonaws.sqs#QueueDoesNotExist", 400, qfan.QueueNotFound),
        ("QueueAlreadyExists", 400, qfan.QueueNameExists),
        ("RequestThrottled", 400, qfan.Throttled),
        ("ThrottlingException", 400, qfan.Throttled),
        ("InvalidParameterValue", 400, qfan.InvalidParameter),
        ("AWS.SimpleQueueService.BatchRequestTooLong", 400, qfan.BatchTooLarge),
        ("ReceiptHandleIsInvalid", 400, qfan.ReceiptHandleInvalid),
        ("AWS.SimpleQueueService.MessageNotInflight", 400, qfan.ReceiptHandleInvalid),
        ("AccessDenied", 403, qfan.AccessDenied),
        ("InternalError", 500, qfan.ServiceUnavailable),
        ("SomethingNew", 503, qfan.ServiceUnavailable),
        ("SomethingNew", 400, qfan.AwsError),
    ],
)
def test_error_codes_map_to_the_tree(code: str, status: int, cls: type[qfan.AwsError]) -> None:
    error = error_for_code(code, "msg", operation="Op", request_id="rid", status=status)
    assert type(error) is cls
    assert (error.code, error.request_id, error.operation) == (code, "rid", "Op")
    assert error.transient == (cls in (qfan.Throttled, qfan.ServiceUnavailable))


def test_attribute_rules() -> None:
    wire = to_wire({"a": "x", "n": 3, "f": 1.5, "b": b"\x01"}, "text/plain")
    assert {name: a.data_type for name, a in wire.items()} == {
        "a": "String",
        "n": "Number",
        "f": "Number",
        "b": "Binary",
        "content-type": "String",
    }
    assert wire_size(wire) == sum(
        len(n) + len(a.data_type) + len(a.binary_value or (a.string_value or "").encode())
        for n, a in wire.items()
    )
    for bad in ({"AWS.x": "1"}, {"a..b": "1"}, {"content-type": "x"}, {"ok": True}, {"ok": [1]}):
        with pytest.raises(qfan.ConfigError):
            to_wire(bad, "text/plain")  # type: ignore[arg-type]
    with pytest.raises(qfan.ConfigError, match="at most 9"):
        to_wire({f"a{i}": "v" for i in range(10)}, "text/plain")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bucket": "Upper"}, "invalid S3 bucket name"),
        ({"bucket": "ab"}, "invalid S3 bucket name"),
        ({"bucket": "a..b"}, "invalid S3 bucket name"),
        ({"bucket": "ok-bucket", "prefix": "sp ace/"}, "invalid offload prefix"),
        ({"bucket": "ok-bucket", "prefix": "p" * 989}, "invalid offload prefix"),
        ({"bucket": "ok-bucket", "threshold": -1}, "threshold"),
        ({"bucket": "ok-bucket", "threshold": "big"}, "threshold"),
        ({"bucket": "ok-bucket", "marker": "S3Size"}, "marker"),
        ({"bucket": "ok-bucket", "max_payload_size": 0}, "max_payload_size"),
        ({"bucket": "ok-bucket", "allowed_buckets": ["Bad_Bucket"]}, "invalid S3 bucket name"),
        ({"bucket": "ok-bucket", "expire_with_retention": True}, "needs a prefix"),
    ],
)
def test_offload_policy_is_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(qfan.ConfigError, match=message):
        qfan.Offload(**options)


def test_offload_policy_allows_its_own_bucket_and_the_listed_ones() -> None:
    policy = qfan.Offload("own-bucket", allowed_buckets=["partner-bucket"])
    assert policy.allows("own-bucket")
    assert policy.allows("partner-bucket")
    assert not policy.allows("other-bucket")
    assert qfan.Offload("own-bucket", allowed_buckets="partner-bucket").allows("partner-bucket")
    assert policy.threshold_for(1_048_576) == 1_048_576  # "auto": the queue's own limit
    assert qfan.Offload("own-bucket", threshold=300_000).threshold_for(262_144) == 262_144
    assert qfan.Offload("own-bucket", encryption="alias/payloads").put_encryption() == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/payloads",
    }


def test_s3_error_codes_map_into_the_tree() -> None:
    assert isinstance(error_for_code("NoSuchKey", ""), qfan.ObjectNotFound)
    assert isinstance(error_for_code("NoSuchBucket", ""), qfan.ObjectNotFound)
    assert isinstance(error_for_code("SlowDown", "", status=503), qfan.Throttled)
    assert isinstance(error_for_code("AccessDenied", "", status=403), qfan.AccessDenied)
