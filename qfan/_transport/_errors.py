"""The one place where AWS error codes and connection failures become qfan exceptions.

Every error text built here goes through ``redact``: AWS quotes the canonical request, session token
included, in ``SignatureDoesNotMatch`` answers, and error texts end up in logs and tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from .._exceptions import (
    AccessDenied,
    AwsError,
    BatchTooLarge,
    ConfigError,
    InvalidParameter,
    ObjectNotFound,
    QueueNameExists,
    QueueNotFound,
    ReceiptHandleInvalid,
    ServiceUnavailable,
    Throttled,
    TransportError,
)
from ._redact import redact

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
    except ClientError as exc:
        _scrub(exc)
        raise _from_client_error(exc, operation) from exc
    except (HTTPClientError, BotocoreConnectionError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise TransportError(redact(f"{operation}: {exc}")) from exc
    except (
        NoCredentialsError,
        PartialCredentialsError,
        NoRegionError,
        ParamValidationError,
    ) as exc:
        _scrub(exc)
        raise ConfigError(redact(f"{operation}: {exc}")) from exc
    except BotoCoreError as exc:
        # Anything else botocore raises is still reported inside the one tree, never as a bare botocore error.
        _scrub(exc)
        raise AwsError(redact(str(exc)), code=type(exc).__name__, operation=operation) from exc
