"""What the in-memory planes share: the account they pretend to be, AWS-shaped errors, and the validation of
message attributes, which SQS and SNS apply alike.

Errors go through :func:`qfan._transport.error_for_code`, the one mapping the AWS planes use, with the codes
AWS itself sends (as botocore reports them), so a memory plane raises the very qfan exception an AWS plane
raises for the same mistake.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypedDict

from .._exceptions import AwsError
from .._transport import EntryFailure, WireAttribute, error_for_code

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class Account(TypedDict, total=False):
    """Who the in-memory planes are: ``account_id`` and ``region`` in URLs and ARNs, and the ``clock``
    (monotonic seconds) that visibility timeouts, delays and deduplication windows run on."""

    account_id: str
    region: str
    clock: Callable[[], float]


# Batch entry ids: what SQS and SNS accept.
_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
# Characters SQS and SNS accept in bodies and string values (the XML 1.0 character range).
_INVALID_CHARACTER = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_RESERVED_PREFIXES = ("aws.", "amazon.")


def aws_error(code: str, message: str, operation: str, *, status: int = 400) -> AwsError:
    """The qfan error an AWS plane raises when AWS answers ``code`` (with a request id, as AWS gives)."""
    return error_for_code(
        code,
        message,
        operation=operation,
        request_id=str(uuid.uuid4()),
        sender_fault=status < 500,
        status=status,
    )


def failure(entry_id: str, code: str, message: str) -> EntryFailure:
    """A failed batch entry that is the sender's fault, as SQS and SNS report one."""
    return EntryFailure(id=entry_id, code=code, message=message, sender_fault=True)


def check_batch_ids(ids: list[str], operation: str, *, prefix: str = "AWS.SimpleQueueService.") -> None:
    """The whole-request checks every SQS and SNS batch call makes, in the order AWS makes them.

    ``prefix`` is how the service spells its codes: SQS's carry ``AWS.SimpleQueueService.``, SNS's none.
    """
    limit = 10
    if not ids:
        raise aws_error(f"{prefix}EmptyBatchRequest", "The batch request is empty.", operation)
    if len(ids) > limit:
        raise aws_error(
            f"{prefix}TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {limit}. You have sent {len(ids)}.",
            operation,
        )
    for entry_id in ids:
        if not _ENTRY_ID.fullmatch(entry_id):
            raise aws_error(
                f"{prefix}InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                "It can be at most 80 letters long.",
                operation,
            )
    seen: set[str] = set()
    for entry_id in ids:
        if entry_id in seen:
            raise aws_error(f"{prefix}BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.", operation)
        seen.add(entry_id)


def has_invalid_characters(text: str) -> bool:
    """Whether ``text`` holds a character SQS refuses (outside XML 1.0's range)."""
    return _INVALID_CHARACTER.search(text) is not None


def attribute_size(name: str, attribute: WireAttribute) -> int:
    """Bytes an attribute counts towards the message size: name, data type and value."""
    value = attribute.binary_value if attribute.binary_value is not None else attribute.string_value
    value_size = len(value) if isinstance(value, bytes) else len((value or "").encode())
    return len(name.encode()) + len(attribute.data_type.encode()) + value_size


def message_size(body: str, attributes: Mapping[str, WireAttribute]) -> int:
    """A message's size as SQS and SNS count it: body plus every attribute's name, type and value."""
    return len(body.encode()) + sum(attribute_size(n, a) for n, a in attributes.items())


def attribute_problem(
    attributes: Mapping[str, WireAttribute],
    *,
    types: tuple[str, ...] = ("String", "Number", "Binary"),
    limit: int | None = 10,
) -> str | None:
    """Why SQS refuses these message attributes, or ``None``; SNS checks them with no ``limit``."""
    if limit is not None and len(attributes) > limit:
        return f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [{limit}]."
    for name, attribute in attributes.items():
        lowered = name.lower()
        if (
            not _ATTRIBUTE_NAME.fullmatch(name)
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
            or lowered.startswith(_RESERVED_PREFIXES)
        ):
            return f"Message (user) attribute name '{name}' is invalid."
        base = attribute.data_type.split(".", 1)[0]
        if base not in types or len(attribute.data_type) > 256 or attribute.data_type.endswith("."):
            return f"The type of message (user) attribute '{name}' is invalid."
        problem = _value_problem(name, base, attribute)
        if problem is not None:
            return problem
    return None


def _value_problem(name: str, base: str, attribute: WireAttribute) -> str | None:
    if base == "Binary":
        if not attribute.binary_value:
            return f"Message (user) attribute '{name}' must contain a non-empty value of type 'Binary'."
        return None
    value = attribute.string_value
    if not value:
        return f"Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
    if has_invalid_characters(value):
        return f"Message (user) attribute '{name}' contains invalid characters."
    if base == "Number" and parse_number(value) is None:
        return f"Can't cast the value of message (user) attribute '{name}' to a number."
    return None


def parse_number(text: str) -> Decimal | None:
    """``text`` as a finite number, or ``None``."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
