"""Body encoding and decoding with msgspec, and the content-type attribute that tells a reader which was used.

=================  =====================================  =========================================
value              body                                   ``content-type`` attribute
=================  =====================================  =========================================
``str``            the text itself                        ``text/plain``
``bytes``          base64                                 ``application/octet-stream;base64``
anything else      JSON (default)                         ``application/json``
anything else      msgpack, base64 (``format="msgpack"``) ``application/msgpack;base64``
=================  =====================================  =========================================

A body without the attribute (sent by another producer) is read as JSON, except that a consumer asking for
``str`` gets the raw text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final, Generic, Literal, TypeVar, cast

import msgspec

from .._exceptions import DecodeError, EncodeError

T = TypeVar("T")

Format = Literal["json", "msgpack"]

CONTENT_TYPE: Final = "content-type"
JSON: Final = "application/json"
TEXT: Final = "text/plain"
BYTES: Final = "application/octet-stream;base64"
MSGPACK: Final = "application/msgpack;base64"


class Encoder:
    """Turns values into ``(body, content_type)``; one per queue, reused for every message."""

    __slots__ = ("_format", "_json", "_msgpack")

    def __init__(self, format: Format = "json") -> None:
        if format not in ("json", "msgpack"):
            raise EncodeError(f"unknown body format {format!r}: use 'json' or 'msgpack'")
        self._format = format
        self._json = msgspec.json.Encoder()
        self._msgpack = msgspec.msgpack.Encoder()

    def encode(self, value: object) -> tuple[str, str]:
        """Encode ``value``; raises :class:`EncodeError` for values msgspec cannot represent."""
        if isinstance(value, str):
            return value, TEXT
        if isinstance(value, bytes | bytearray | memoryview):
            return base64.b64encode(value).decode("ascii"), BYTES
        try:
            if self._format == "msgpack":
                return base64.b64encode(self._msgpack.encode(value)).decode("ascii"), MSGPACK
            return self._json.encode(value).decode(), JSON
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            raise EncodeError(f"cannot encode {type(value).__name__} value: {exc}") from exc


class Decoder(Generic[T]):
    """Turns ``(body, content_type)`` back into a ``T``; built once per queue handle and type."""

    __slots__ = ("_json", "_msgpack", "_raw_text", "_type")

    def __init__(self, type: type[T] | Any = Any) -> None:
        self._type = type
        self._json: msgspec.json.Decoder[T] = msgspec.json.Decoder(type)
        self._msgpack: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(type)
        self._raw_text = type is str

    def decode(self, body: str, content_type: str | None) -> T:
        """Decode a body; raises :class:`DecodeError` (keeping the raw body) when it does not fit."""
        try:
            if content_type is None and self._raw_text:
                return cast(T, body)
            if content_type is None or content_type == JSON:
                return self._json.decode(body)
            if content_type == TEXT:
                return self._convert(body)
            if content_type == BYTES:
                return self._convert(base64.b64decode(body, validate=True))
            if content_type == MSGPACK:
                return self._msgpack.decode(base64.b64decode(body, validate=True))
        except RecursionError as exc:  # msgspec recurses per nesting level: a hostile body is deep, not big
            raise DecodeError(
                f"cannot decode {content_type or 'untyped'} body as {self._type_name}: nested too deeply",
                raw_body=body,
                content_type=content_type,
            ) from exc
        except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, ValueError) as exc:
            raise DecodeError(
                f"cannot decode {content_type or 'untyped'} body as {self._type_name}: {exc}",
                raw_body=body,
                content_type=content_type,
            ) from exc
        raise DecodeError(f"unknown content type {content_type!r}", raw_body=body, content_type=content_type)

    def _convert(self, value: str | bytes) -> T:
        if self._type is Any:
            return cast(T, value)
        return msgspec.convert(value, self._type, strict=True)

    @property
    def _type_name(self) -> str:
        return getattr(self._type, "__name__", repr(self._type))
