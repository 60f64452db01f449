"""The lean SNS publish path against botocore itself: the same request bytes, the same reading of answers.

Pure (no I/O): botocore's own query serializer and parser are the reference. Over HTTP, the plane contract
suite (``tests/contract/test_sns.py``) runs the lean plane (transport ``fast``) on moto and MiniStack.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from multidict import CIMultiDict, CIMultiDictProxy

from qfan import AwsError
from qfan._transport import PublishEntry, WireAttribute
from qfan._transport._botocore import batch_item, entry_failures
from qfan._transport._sns_query import form_encode, parse_publish_batch, publish_batch_params
from qfan._transport._xml import error_from_xml

ARN = "arn:aws:sns:us-east-1:123456789012:orders.fifo"
_MODEL = botocore.session.get_session().get_service_model("sns")
_OPERATION = _MODEL.operation_model("PublishBatch")

ENTRIES = {
    "plain": [PublishEntry("0", "hello", {})],
    "every field": [
        PublishEntry(
            "7",
            '{"total": 12.5, "note": "ä ü / & = + ~ *"}',
            {
                "content-type": WireAttribute("String", "application/json"),
                "blob": WireAttribute("Binary", binary_value=b"\x00\xffraw"),
                "n": WireAttribute("Number.int", "42"),
            },
            subject="an order: #1",
            group_id="customer-1",
            dedup_id="order-1",
        )
    ],
    "ten": [PublishEntry(str(i), f"m{i}", {"i": WireAttribute("String", str(i))}) for i in range(10)],
}


def botocore_body(entries: list[PublishEntry]) -> bytes:
    params = {
        "TopicArn": ARN,
        "PublishBatchRequestEntries": [
            batch_item(e.id, ("Message", e.body), e.attributes, e.group_id, e.dedup_id, Subject=e.subject)
            for e in entries
        ],
    }
    request = create_serializer("query").serialize_to_request(params, _OPERATION)
    prepare_request_dict(request, endpoint_url="https://sns.us-east-1.amazonaws.com")
    body = create_request_object(request).prepare().body
    return body if isinstance(body, bytes) else body.encode()


@pytest.mark.parametrize("case", list(ENTRIES))
def test_the_request_is_byte_for_byte_botocores(case: str) -> None:
    entries = ENTRIES[case]
    assert form_encode(publish_batch_params(ARN, entries)) == botocore_body(entries)


def botocore_parse(body: bytes, status: int = 200) -> dict[str, Any]:
    response = {"status_code": status, "headers": {}, "body": body}
    return create_parser("query").parse(response, _OPERATION.output_shape)  # type: ignore[no-any-return]


ANSWER = b"""<?xml version="1.0"?>
<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishBatchResult>
    <Successful>
      <member><Id>0</Id><MessageId>mid-0</MessageId><SequenceNumber>10000000000000000001</SequenceNumber></member>
      <member><Id>2</Id><MessageId>mid-2</MessageId></member>
    </Successful>
    <Failed>
      <member>
        <Id>1</Id><Code>InvalidParameter</Code><Message>bad &amp; wrong</Message>
        <SenderFault>true</SenderFault>
      </member>
      <member>
        <Id>3</Id><Code>InternalError</Code><Message>try again</Message><SenderFault>false</SenderFault>
      </member>
    </Failed>
  </PublishBatchResult>
  <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</PublishBatchResponse>"""


def test_the_answer_reads_as_botocore_reads_it() -> None:
    ours = parse_publish_batch(ANSWER)
    theirs = botocore_parse(ANSWER)
    assert [(m.id, m.message_id, m.sequence_number) for m in ours.succeeded] == [
        (m["Id"], m["MessageId"], m.get("SequenceNumber")) for m in theirs["Successful"]
    ]
    assert ours.failed == entry_failures(theirs)


def test_an_answer_that_is_not_xml_is_a_parser_error() -> None:
    with pytest.raises(AwsError, match="Unable to parse response") as caught:
        parse_publish_batch(b"<html>gateway</html")
    assert caught.value.code == "ResponseParserError"


ERRORS = [
    (
        404,
        b"<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code>"
        b"<Message>Topic does not exist</Message></Error><RequestId>req-9</RequestId></ErrorResponse>",
        "NotFound",
        True,
    ),
    (
        400,
        b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
        b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        b"<RequestId>r</RequestId></ErrorResponse>",
        "Throttling",
        True,
    ),
    (
        500,
        b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>oops</Message></Error>"
        b"</ErrorResponse>",
        "InternalError",
        False,
    ),
    (503, b"", "503", None),
]


@pytest.mark.parametrize(("status", "body", "code", "sender_fault"), ERRORS)
def test_error_answers_read_as_botocore_reads_them(
    status: int, body: bytes, code: str, sender_fault: bool | None
) -> None:
    error = error_from_xml("PublishBatch", status, CIMultiDictProxy(CIMultiDict()), body)
    theirs = botocore_parse(body, status)["Error"]
    assert error.code == theirs["Code"] == code
    assert str(theirs.get("Message", "")) in str(error)
    assert error.sender_fault is sender_fault
