"""The lean SNS publish path: ``PublishBatch`` in SNS's query protocol over the pooled aiohttp session.

The request is form-encoded exactly as botocore's query serializer encodes it (same parameters, same order,
same percent-encoding); the answer's XML is read into the same records, and error answers into the same
``error_for_code`` mapping. Everything else SNS does for qfan (topics, subscriptions) is rare and stays on
aiobotocore: :class:`FastSns` is the botocore plane with ``publish_batch`` replaced.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

from .._exceptions import AwsError
from ._signed import SignedClient
from ._sns import BotocoreSns
from ._types import BatchResult, EntryFailure, PublishedMessage, PublishEntry, WireAttributes
from ._xml import child, members, text

_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_VERSION = "2010-03-31"


def publish_batch_params(topic_arn: str, entries: Sequence[PublishEntry]) -> list[tuple[str, str]]:
    """``PublishBatch``'s form parameters, in the order botocore's query serializer writes the botocore
    plane's request (its entries' keys in the order ``batch_item`` sets them)."""
    params = [("Action", "PublishBatch"), ("Version", _VERSION), ("TopicArn", topic_arn)]
    for n, entry in enumerate(entries, 1):
        prefix = f"PublishBatchRequestEntries.member.{n}."
        params += [(prefix + "Id", entry.id), (prefix + "Message", entry.body)]
        params += _attribute_params(prefix + "MessageAttributes.entry.", entry.attributes)
        if entry.subject is not None:
            params.append((prefix + "Subject", entry.subject))
        if entry.group_id is not None:
            params.append((prefix + "MessageGroupId", entry.group_id))
        if entry.dedup_id is not None:
            params.append((prefix + "MessageDeduplicationId", entry.dedup_id))
    return params


def _attribute_params(prefix: str, attributes: WireAttributes) -> Iterator[tuple[str, str]]:
    for k, (name, attribute) in enumerate(attributes.items(), 1):
        at = f"{prefix}{k}."
        yield at + "Name", name
        yield at + "Value.DataType", attribute.data_type
        if attribute.string_value is not None:
            yield at + "Value.StringValue", attribute.string_value
        if attribute.binary_value is not None:
            yield at + "Value.BinaryValue", base64.b64encode(attribute.binary_value).decode()


def form_encode(params: Sequence[tuple[str, str]]) -> bytes:
    """``name=value&...``, form-encoded as botocore encodes query bodies (``urlencode``: spaces as ``+``)."""
    return urlencode(params).encode()


def parse_publish_batch(body: bytes) -> BatchResult[PublishedMessage]:
    """``PublishBatchResponse`` read into records (``ResponseParserError`` when it is not that XML)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise AwsError(
            f"Unable to parse response ({exc})", code="ResponseParserError", operation="PublishBatch"
        ) from exc
    result = child(root, "PublishBatchResult")
    if result is None:
        raise AwsError(
            "Unable to parse response (no PublishBatchResult)",
            code="ResponseParserError",
            operation="PublishBatch",
        )
    succeeded = [
        PublishedMessage(text(m, "Id"), text(m, "MessageId"), text(m, "SequenceNumber") or None)
        for m in members(child(result, "Successful"))
    ]
    failed = [
        EntryFailure(
            id=text(m, "Id"),
            code=text(m, "Code", "Unknown"),
            message=text(m, "Message"),
            sender_fault=text(m, "SenderFault", "true").lower() == "true",
        )
        for m in members(child(result, "Failed"))
    ]
    return BatchResult(succeeded=succeeded, failed=failed)


class FastSns(BotocoreSns):
    """SNS with ``PublishBatch`` on the lean path; topic and subscription calls on aiobotocore.

    Args:
        client: the aiobotocore SNS client (management calls).
        signed: signed posts to the same endpoint, region and credentials (service ``sns``).
    """

    def __init__(self, client: Any, signed: SignedClient) -> None:
        super().__init__(client)
        self._signed = signed
        self._headers = {"content-type": _CONTENT_TYPE, "host": signed.host}

    async def publish_batch(
        self, topic_arn: str, entries: Sequence[PublishEntry]
    ) -> BatchResult[PublishedMessage]:
        payload = form_encode(publish_batch_params(topic_arn, entries))
        return parse_publish_batch(await self._signed.call("PublishBatch", payload, self._headers))
