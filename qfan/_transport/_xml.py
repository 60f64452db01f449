"""AWS's XML answers (SNS's query protocol, S3's REST): namespace-blind element access and error answers."""

from __future__ import annotations

import http.client
import xml.etree.ElementTree as ElementTree

from multidict import CIMultiDictProxy

from .._exceptions import AwsError
from ._errors import error_for_code


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def text(element: ElementTree.Element, name: str, default: str = "") -> str:
    found = child(element, name)
    return default if found is None or found.text is None else found.text


def members(element: ElementTree.Element | None) -> list[ElementTree.Element]:
    return [] if element is None else [c for c in element if _local(c.tag) == "member"]


def error_from_xml(operation: str, status: int, headers: CIMultiDictProxy[str], body: bytes) -> AwsError:
    """The qfan error for an XML error answer (SNS's ``ErrorResponse``, S3's ``Error``)."""
    request_id = headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")
    code, message, sender_fault = str(status), "", None
    try:
        root = ElementTree.fromstring(body) if body.strip() else None
    except ElementTree.ParseError:
        root = None
    error = None if root is None else (root if _local(root.tag) == "Error" else child(root, "Error"))
    if error is not None:
        code = text(error, "Code", code)
        message = text(error, "Message")
        kind = text(error, "Type")
        sender_fault = kind == "Sender" if kind else None
        if root is not None:
            request_id = text(root, "RequestId") or request_id
    elif status >= 500:
        message = http.client.responses.get(status, "")  # a bare 5xx: botocore's generic answer
    return error_for_code(
        code, message, operation=operation, request_id=request_id, sender_fault=sender_fault, status=status
    )
