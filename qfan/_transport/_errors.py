"""The one place where AWS error codes and connection failures become qfan exceptions.

Every error text built here goes through ``redact``: AWS quotes the canonical request, session token
included, in ``SignatureDoesNotMatch`` answers, and error texts end up in logs and tracebacks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._exceptions import (
    AccessDenied,
    AwsError,
    BatchTooLarge,
    ConfigError,
    InvalidParameter,
    ObjectNotFound,
    QfanError,
    QueueNameExists,
    QueueNotFound,
    ReceiptHandleInvalid,
    ServiceUnavailable,
    Throttled,
    TransportError,
)
from ._redact import redact

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError

# Codes appear in three spellings: query protocol ("AWS.SimpleQueueService.NonExistentQueue"), JSON
# protocol ("com.amazonaws.sqs#QueueDoesNotExist") and plain. They are normalised before lookup.
_CODE_CLASSES: dict[str, type[AwsError]] = {
    **dict.fromkeys(("QueueDoesNotExist", "NonExistentQueue", "NoSuchQueue"), QueueNotFound),
    **dict.fromkeys(("QueueNameExists", "QueueAlreadyExists"), QueueNameExists),
    # S3 answers a GetObject/HeadObject on a missing key with NoSuchKey (or a bare 404 for HEAD).
    **dict.fromkeys(("NoSuchKey", "NoSuchBucket", "404", "NotFound"), ObjectNotFound),
    **dict.fromkeys(
        (
            "AccessDenied",
            "AccessDeniedException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
            "InvalidSecurity",
            "ExpiredToken",
            "KmsAccessDenied",
            "AllAccessDisabled",
            "InvalidAccessKeyId",
        ),
        AccessDenied,
    ),
    **dict.fromkeys(
        (
            "InvalidParameterValue",
            "InvalidParameterValueException",
            "InvalidAttributeName",
            "InvalidAttributeValue",
            "InvalidMessageContents",
            "MissingParameter",
            "InvalidBatchEntryId",
            "BatchEntryIdsNotDistinct",
            "EmptyBatchRequest",
            "TooManyEntriesInBatchRequest",
            "UnsupportedOperation",
            "ValidationError",
            "ValidationException",
            "InvalidIdFormat",
            "OverLimit",
            "InvalidAddress",
            "KmsInvalidKeyUsage",
            "KmsInvalidState",
            "KmsNotFound",
            "KmsDisabled",
            "InvalidArgument",
            "InvalidBucketName",
            "InvalidRequest",
            "EntityTooLarge",
            "KMS.NotFoundException",
        ),
        InvalidParameter,
    ),
    "BatchRequestTooLong": BatchTooLarge,
    **dict.fromkeys(
        ("ReceiptHandleIsInvalid", "InvalidReceiptHandle", "MessageNotInflight"),
        ReceiptHandleInvalid,
    ),
    **dict.fromkeys(
        (
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "RequestThrottled",
            "RequestThrottledException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "SlowDown",
            "KmsThrottled",
            "ProvisionedThroughputExceededException",
        ),
        Throttled,
    ),
    **dict.fromkeys(
        (
            "InternalError",
            "InternalFailure",
            "InternalServerError",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "RequestTimeout",
            "ServiceUnavailableError",
        ),
        ServiceUnavailable,
    ),
}


def normalise_code(code: str) -> str:
    """Strip the protocol-specific prefixes an AWS error code may carry."""
    code = code.rpartition("#")[2]
    for prefix in ("AWS.SimpleQueueService.", "AWS.SimpleNotificationService.", "AWS."):
        if code.startswith(prefix):
            return code[len(prefix) :]
    return code


def error_for_code(
    code: str,
    message: str,
    *,
    operation: str | None = None,
    request_id: str | None = None,
    sender_fault: bool | None = None,
    status: int | None = None,
) -> AwsError:
    """Build the typed qfan error for an AWS error code (for whole calls and for batch entries alike).

    The server's ``message`` is kept, with credentials, signatures and tokens redacted.
    """
    cls = _CODE_CLASSES.get(normalise_code(code))
    if cls is None:
        cls = ServiceUnavailable if (status or 0) >= 500 else AwsError
    return cls(
        redact(message),
        code=code,
        operation=operation,
        request_id=request_id,
        sender_fault=sender_fault,
    )


def _scrub(exc: BotoCoreError | ClientError) -> None:
    """Redact the text of a botocore exception in place: it stays chained (``__cause__``) to the qfan
    error, and tracebacks print it."""
    from botocore.exceptions import ClientError

    exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error")
        if isinstance(error, dict) and isinstance(error.get("Message"), str):
            error["Message"] = redact(error["Message"])


def _from_client_error(exc: ClientError, operation: str) -> AwsError:
    error = exc.response.get("Error", {})
    metadata = exc.response.get("ResponseMetadata", {})
    fault = error.get("Type")
    return error_for_code(
        str(error.get("Code") or "Unknown"),
        str(error.get("Message") or ""),
        operation=operation,
        request_id=metadata.get("RequestId"),
        sender_fault=None if fault is None else fault == "Sender",
        status=metadata.get("HTTPStatusCode"),
    )


@contextmanager
def map_aws_errors(operation: str) -> Iterator[None]:
    """Translate botocore and connection exceptions raised inside the block into qfan errors."""
    try:
        yield
    except Exception as exc:
        mapped = _mapped(exc, operation)
        if mapped is None:
            raise
        raise mapped from exc


def _mapped(exc: Exception, operation: str) -> QfanError | None:
    """The qfan error for ``exc``, or ``None`` when it is not botocore's or the connection's.

    botocore and aiohttp are imported here, not at the top: ``import qfan`` must stay cheap (a Lambda
    function's cold start), and an error from them can only be raised once they are loaded anyway.
    """
    if isinstance(exc, OSError | TimeoutError):
        return TransportError(redact(f"{operation}: {exc}"))
    if not any(name in sys.modules for name in ("botocore", "aiohttp")):
        return None
    import aiohttp
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        _scrub(exc)
        return _from_client_error(exc, operation)
    if isinstance(exc, boto.HTTPClientError | boto.ConnectionError | aiohttp.ClientError):
        return TransportError(redact(f"{operation}: {exc}"))
    config_errors: tuple[type[Any], ...] = (
        boto.NoCredentialsError,
        boto.PartialCredentialsError,
        boto.NoRegionError,
        boto.ParamValidationError,
    )
    if isinstance(exc, config_errors):
        _scrub(exc)
        return ConfigError(redact(f"{operation}: {exc}"))
    if isinstance(exc, boto.BotoCoreError):
        # Anything else botocore raises is still reported inside the one tree, never as a bare botocore error.
        _scrub(exc)
        return AwsError(redact(str(exc)), code=type(exc).__name__, operation=operation)
    return None
