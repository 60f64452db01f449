"""The transport layer: the only code in qfan that speaks the AWS wire.

The planes built on aiobotocore and aiohttp are loaded on first use (``__getattr__``), so that
``import qfan`` does not import them: they are most of a cold start (see README, Running on AWS Lambda).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._base import (
    KeyValueTable,
    ObjectStore,
    SnsPlane,
    SqsControlPlane,
    SqsDataPlane,
    TableTransport,
    Transport,
)
from ._checksum import corruption_of, md5_of_attributes, md5_of_body
from ._errors import error_for_code, map_aws_errors
from ._planes import TRANSPORTS, AwsTransport, TransportName, open_sqs_planes, resolve_transport
from ._redact import RedactingFilter, install_redaction, redact, register_secret
from ._retry import RetryPolicy
from ._retrying import RetryingKeyValueTable, RetryingObjectStore, RetryingSns, RetryingSqs
from ._settings import ConnectionSettings, resolve_endpoint
from ._types import (
    BatchResult,
    EntryFailure,
    Item,
    ItemValue,
    LifecycleChange,
    MoveTask,
    PublishedMessage,
    PublishEntry,
    PutOptions,
    ReceiptEntry,
    ReceivedMessage,
    SendEntry,
    SentMessage,
    StoredObject,
    VisibilityEntry,
    WireAttribute,
    WireAttributes,
)

if TYPE_CHECKING:
    from ._botocore import BotocoreSqs, open_sqs
    from ._dynamodb import BotocoreDynamoDb, open_dynamodb
    from ._s3 import BotocoreS3, open_s3
    from ._sns import BotocoreSns, open_sns
    from ._sqs_json import FastSqs

_LAZY = {
    "BotocoreDynamoDb": "_dynamodb",
    "open_dynamodb": "_dynamodb",
    "BotocoreSqs": "_botocore",
    "open_sqs": "_botocore",
    "BotocoreS3": "_s3",
    "open_s3": "_s3",
    "BotocoreSns": "_sns",
    "open_sns": "_sns",
    "FastSqs": "_sqs_json",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


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
    "MoveTask",
    "ObjectStore",
    "PublishEntry",
    "PublishedMessage",
    "PutOptions",
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
