"""The transport layer: the only code in qfan that speaks the AWS wire."""

from ._base import SqsControlPlane, SqsDataPlane
from ._botocore import BotocoreSqs, open_sqs
from ._checksum import corruption_of, md5_of_attributes, md5_of_body
from ._connection import SnsConnection, SqsConnection
from ._errors import error_for_code, map_aws_errors
from ._retry import RetryPolicy
from ._settings import ConnectionSettings, resolve_endpoint
from ._sns import BotocoreSns, open_sns
from ._types import (
    BatchResult,
    EntryFailure,
    PublishedMessage,
    PublishEntry,
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
    "BotocoreSns",
    "BotocoreSqs",
    "ConnectionSettings",
    "EntryFailure",
    "PublishEntry",
    "PublishedMessage",
    "ReceiptEntry",
    "ReceivedMessage",
    "RetryPolicy",
    "SendEntry",
    "SentMessage",
    "SnsConnection",
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
    "open_sns",
    "open_sqs",
    "resolve_endpoint",
]
