"""Running an app's workers as AWS Lambda functions: events in, partial batch responses out, and a local
event source mapping (``qfan lambda run``)."""

from ._handler import LambdaContext, LambdaHandler
from ._records import from_sns_record, from_sqs_record, sqs_event, sqs_record
from ._registry import LambdaRegistry
from ._sns import TopicHandler

__all__ = [
    "LambdaContext",
    "LambdaHandler",
    "LambdaRegistry",
    "TopicHandler",
    "from_sns_record",
    "from_sqs_record",
    "sqs_event",
    "sqs_record",
]
