"""MD5 digests SQS reports for bodies and message attributes, recomputed locally to detect corruption.

The attribute digest follows the SQS algorithm: attributes sorted by name, each encoded as
length-prefixed name, length-prefixed data type, a transport byte (1 = string, 2 = binary) and the
length-prefixed value, all lengths 4-byte big-endian.
"""

from __future__ import annotations

import functools
import hashlib
import struct

from ._types import WireAttributes

_STRING = b"\x01"
_BINARY = b"\x02"


def _prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_body(body: str) -> str:
    """Hex MD5 of a message body's UTF-8 bytes."""
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: WireAttributes) -> str | None:
    """Hex MD5 of message attributes as SQS computes it, or ``None`` when there are none."""
    if not attributes:
        return None
    # Most messages carry the same few attributes (often just the content type): remember their digests.
    return _digest(
        tuple(sorted((name, a.data_type, a.string_value, a.binary_value) for name, a in attributes.items()))
    )


@functools.lru_cache(maxsize=1024)
def _digest(attributes: tuple[tuple[str, str, str | None, bytes | None], ...]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for name, data_type, string_value, binary_value in attributes:
        digest.update(_prefixed(name.encode()))
        digest.update(_prefixed(data_type.encode()))
        if binary_value is not None:
            digest.update(_BINARY + _prefixed(binary_value))
        else:
            digest.update(_STRING + _prefixed((string_value or "").encode()))
    return digest.hexdigest()


def corruption_of(
    body: str, md5_body: str | None, attributes: WireAttributes, md5_attributes: str | None
) -> str | None:
    """Describe which reported digest does not match, or return ``None`` when all match.

    A digest the server did not report is not checked (some emulators omit the attribute digest).
    """
    if md5_body is not None and md5_body != md5_of_body(body):
        return f"MD5 of body {md5_body} does not match the received body"
    if md5_attributes is not None and md5_attributes != md5_of_attributes(attributes):
        return f"MD5 of message attributes {md5_attributes} does not match the received attributes"
    return None
