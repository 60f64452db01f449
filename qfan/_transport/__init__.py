"""The transport layer: the only code in qfan that speaks the AWS wire."""

from ._base import (
    KeyValueTable,
    ObjectStore,
    SnsPlane,
    SqsControlPlane,
    SqsDataPlane,
    TableTransport,
    Transport,
)
from ._botocore import BotocoreSqs, open_sqs
from ._checksum import corruption_of, md5_of_attributes, md5_of_body
from ._dynamodb import BotocoreDynamoDb, Item, ItemValue, open_dynamodb
from ._errors import error_for_code, map_aws_errors
from ._planes import TRANSPORTS, AwsTransport, TransportName, open_sqs_planes, resolve_transport
from ._redact import RedactingFilter, install_redaction, redact, register_secret
from ._retry import RetryPolicy
from ._retrying import RetryingKeyValueTable, RetryingObjectStore, RetryingSns, RetryingSqs
from ._s3 import BotocoreS3, open_s3
from ._settings import ConnectionSettings, resolve_endpoint
from ._sns import BotocoreSns, open_sns
from ._sqs_json import FastSqs
from ._types import (
    BatchResult,
    EntryFailure,
    LifecycleChange,
    PublishedMessage,
    PublishEntry,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    StoredObject,
    VisibilityEntry,
    WireAttribute,
    WireAttributes,
)

__all__ = [
    "TRANSPORTS",
    "AwsTransport",
    "BatchResult",
    "BotocoreDynamoDb",
    "BotocoreS3",
    "BotocoreSns",
    "BotocoreSqs",
    "ConnectionSettings",
    "EntryFailure",
    "FastSqs",
    "Item",
    "ItemValue",
    "KeyValueTable",
    "LifecycleChange",
    "ObjectStore",
    "PublishEntry",
    "PublishedMessage",
    "ReceiptEntry",
    "ReceivedMessage",
    "RedactingFilter",
    "RetryPolicy",
    "RetryingKeyValueTable",
    "RetryingObjectStore",
    "RetryingSns",
    "RetryingSqs",
    "SendEntry",
    "SentMessage",
    "SnsPlane",
    "SqsControlPlane",
    "SqsDataPlane",
    "StoredObject",
    "TableTransport",
    "Transport",
    "TransportName",
    "VisibilityEntry",
    "WireAttribute",
    "WireAttributes",
    "corruption_of",
    "error_for_code",
    "install_redaction",
    "map_aws_errors",
    "md5_of_attributes",
    "md5_of_body",
    "open_dynamodb",
    "open_s3",
    "open_sns",
    "open_sqs",
    "open_sqs_planes",
    "redact",
    "register_secret",
    "resolve_endpoint",
    "resolve_transport",
]
