"""The extended-client wire format of an offloaded message, shared with AWS's Java and Python clients.

An offloaded message's SQS body is a JSON array naming the S3 object that holds the real body::

    ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"<bucket>","s3Key":"<key>"}]

and a ``Number`` attribute (``ExtendedPayloadSize``, or the Java SQS client's legacy
``SQSLargePayloadSize``) holds the UTF-8 byte length of the real body. Readers decide by the attribute.
qfan writes the pointer compact (as Java does) and reads compact or spaced JSON with either class name.

AWS's Java client also rewrites receipt handles as
``-..s3BucketName..-<bucket>-..s3BucketName..--..s3Key..-<key>-..s3Key..-<original handle>``;
:func:`split_receipt_handle` undoes that, also when the original handle contains ``-``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import msgspec

POINTER_CLASS: Final = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS: Final = "com.amazon.sqs.javamessaging.MessageS3Pointer"
_POINTER_CLASSES = frozenset({POINTER_CLASS, LEGACY_POINTER_CLASS})

Marker = Literal["ExtendedPayloadSize", "SQSLargePayloadSize"]
MARKERS: Final[tuple[Marker, ...]] = ("ExtendedPayloadSize", "SQSLargePayloadSize")
"""The attribute names that mark an offloaded message: AWS's current default, then the Java legacy one."""

_BUCKET_MARKER: Final = "-..s3BucketName..-"
_KEY_MARKER: Final = "-..s3Key..-"

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class PayloadLocation:
    """Where an offloaded message's body is stored.

    Attributes:
        bucket: the S3 bucket.
        key: the object key.
    """

    bucket: str
    key: str


def pointer_body(location: PayloadLocation) -> str:
    """The SQS body that points at ``location``, in the compact form AWS's Java client writes."""
    pointer = [POINTER_CLASS, {"s3BucketName": location.bucket, "s3Key": location.key}]
    return _encode.encode(pointer).decode()


def parse_pointer(body: str) -> PayloadLocation:
    """Read a pointer body; raises ``ValueError`` saying what is wrong with it."""
    try:
        pointer = _decode.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"pointer body is not JSON: {exc}") from exc
    except RecursionError as exc:  # a pointer is two levels deep; a forged one may be thousands
        raise ValueError("pointer body is nested too deeply") from exc
    if not (isinstance(pointer, list) and len(pointer) == 2 and isinstance(pointer[1], dict)):
        raise ValueError("pointer body must be a JSON array [class name, {s3BucketName, s3Key}]")
    class_name, fields = pointer
    if class_name not in _POINTER_CLASSES:
        raise ValueError(f"unknown pointer class {class_name!r}")
    bucket, key = fields.get("s3BucketName"), fields.get("s3Key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise ValueError("pointer needs non-empty string s3BucketName and s3Key")
    return PayloadLocation(bucket, key)


def split_receipt_handle(handle: str) -> tuple[str, PayloadLocation | None]:
    """Undo the Java client's receipt-handle markers: ``(original handle, location or None)``.

    A handle without (complete) markers is returned unchanged. The markers are found by position, never by
    splitting on ``-``, which SQS handles may contain. Bucket names cannot contain ``..``, so the bucket's
    closing marker is unambiguous; the key ends at the first closing key marker after it.
    """
    if not handle.startswith(_BUCKET_MARKER):
        return handle, None
    bucket_end = handle.find(_BUCKET_MARKER, len(_BUCKET_MARKER))
    if bucket_end < 0:
        return handle, None
    rest = handle[bucket_end + len(_BUCKET_MARKER) :]
    key_end = rest.find(_KEY_MARKER, len(_KEY_MARKER))
    if not rest.startswith(_KEY_MARKER) or key_end < 0:
        return handle, None
    bucket = handle[len(_BUCKET_MARKER) : bucket_end]
    key = rest[len(_KEY_MARKER) : key_end]
    original = rest[key_end + len(_KEY_MARKER) :]
    if not bucket or not key or not original:
        return handle, None
    return original, PayloadLocation(bucket, key)
