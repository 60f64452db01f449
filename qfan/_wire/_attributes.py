"""User-facing message attributes <-> SQS wire attributes, with SQS's naming rules and size accounting."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .._exceptions import ConfigError
from .._transport import WireAttribute, WireAttributes
from ._codec import CONTENT_TYPE
from ._limits import utf8_size
from ._pointer import MARKERS

AttributeValue = str | int | float | bytes
"""What an attribute may hold: ``str`` (String), ``int``/``float`` (Number), ``bytes`` (Binary)."""

MAX_ATTRIBUTES = 10
TRACE_HEADER = "AWSTraceHeader"
"""SQS's one message *system* attribute: an attribute of this name given to a queue's send travels as it
(X-Ray trace context; it takes none of the 10 message attribute slots)."""
_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")
_RESERVED_PREFIXES = ("aws.", "amazon.")


def _check_name(name: str) -> None:
    if (
        not _NAME.match(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
        or name.lower().startswith(_RESERVED_PREFIXES)
    ):
        raise ConfigError(
            f"invalid message attribute name {name!r}: 1-256 characters of A-Z a-z 0-9 _ - ., "
            "not starting or ending with '.', no '..', not starting with 'AWS.' or 'Amazon.'"
        )
    if name == CONTENT_TYPE:
        raise ConfigError(f"message attribute name {name!r} is reserved by qfan for the body's type")
    if name in MARKERS:
        raise ConfigError(f"message attribute name {name!r} is reserved: it marks S3-offloaded messages")


def encode_attributes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, WireAttribute]:
    """Validate user attributes and turn them into wire attributes."""
    wire: dict[str, WireAttribute] = {}
    for name, value in (attributes or {}).items():
        _check_name(name)
        if isinstance(value, bool):
            raise ConfigError(f"attribute {name!r}: use a str for booleans, not {value!r}")
        if isinstance(value, str):
            wire[name] = WireAttribute("String", string_value=value)
        elif isinstance(value, int | float):
            wire[name] = WireAttribute("Number", string_value=repr(value))
        elif isinstance(value, bytes | bytearray):
            wire[name] = WireAttribute("Binary", binary_value=bytes(value))
        else:
            raise ConfigError(
                f"attribute {name!r}: unsupported value type {type(value).__name__} "
                "(use str, int, float or bytes)"
            )
    return wire


def check_count(wire: WireAttributes) -> None:
    """SQS allows 10 attributes per message, qfan's content-type attribute included."""
    if len(wire) > MAX_ATTRIBUTES:
        raise ConfigError(
            f"{len(wire) - 1} message attributes given; SQS allows {MAX_ATTRIBUTES} per message "
            f"and qfan uses one ({CONTENT_TYPE!r}), so at most {MAX_ATTRIBUTES - 1}"
        )


def to_wire(attributes: Mapping[str, AttributeValue] | None, content_type: str) -> WireAttributes:
    """Validate user attributes and add the content-type attribute."""
    wire = encode_attributes(attributes)
    wire[CONTENT_TYPE] = WireAttribute("String", string_value=content_type)
    check_count(wire)
    return wire


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def from_wire(wire: WireAttributes) -> tuple[dict[str, AttributeValue], str | None]:
    """Split wire attributes into the user's attributes and qfan's content type (offload markers dropped)."""
    content_type: str | None = None
    attributes: dict[str, AttributeValue] = {}
    for name, attribute in wire.items():
        kind = attribute.data_type.partition(".")[0]
        if name in MARKERS:
            continue
        if name == CONTENT_TYPE and kind == "String":
            content_type = attribute.string_value
        elif kind == "Binary":
            attributes[name] = attribute.binary_value or b""
        elif kind == "Number":
            try:
                attributes[name] = _number(attribute.string_value or "")
            except ValueError:
                attributes[name] = attribute.string_value or ""
        else:
            attributes[name] = attribute.string_value or ""
    return attributes, content_type


def wire_size(wire: WireAttributes) -> int:
    """Bytes the attributes count towards the message size: name + data type + value."""
    total = 0
    for name, attribute in wire.items():
        value = attribute.binary_value
        total += utf8_size(name) + utf8_size(attribute.data_type)
        total += len(value) if value is not None else utf8_size(attribute.string_value or "")
    return total
