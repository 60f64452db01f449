"""The transport layer: the only code in qfan that speaks the AWS wire."""

from ._base import SqsControlPlane, SqsDataPlane
from ._botocore import BotocoreSqs, open_sqs
from ._checksum import corruption_of, md5_of_attributes, md5_of_body
from ._connection import SqsConnection
from ._errors import error_for_code, map_aws_errors
from ._retry import RetryPolicy
from ._settings import ConnectionSettings, resolve_endpoint
from ._types import (
    BatchResult,
    EntryFailure,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    VisibilityEntry,
    WireAttribute,
    WireAttributes,
)

__all__ = [
    "BatchResult",
    "BotocoreSqs",
    "ConnectionSettings",
    "EntryFailure",
    "ReceiptEntry",
    "ReceivedMessage",
    "RetryPolicy",
    "SendEntry",
    "SentMessage",
    "SqsConnection",
    "SqsControlPlane",
    "SqsDataPlane",
    "VisibilityEntry",
    "WireAttribute",
    "WireAttributes",
    "corruption_of",
    "error_for_code",
    "map_aws_errors",
    "md5_of_attributes",
    "md5_of_body",
    "open_sqs",
    "resolve_endpoint",
]
