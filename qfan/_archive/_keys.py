"""Where an archived record goes: the key template (Firehose's date prefix and dynamic partitioning), pure.

A template is text with placeholders: ``{yyyy}``, ``{MM}``, ``{dd}``, ``{HH}`` (the batch's time, UTC),
``{attr:NAME}`` (a message attribute) and ``{field:PATH}`` (a field of the decoded value, dotted for nested
ones). The default, ``{yyyy}/{MM}/{dd}/{HH}/``, is Firehose's ``YYYY/MM/dd/HH/`` layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._exceptions import ConfigError

DEFAULT_TEMPLATE = "{yyyy}/{MM}/{dd}/{HH}/"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_DATE_PARTS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}
# A partition value becomes one path segment: no '/', nothing S3 or a query engine would read specially.
_SEGMENT = re.compile(r"[A-Za-z0-9_.=+:@-]{1,128}")


class PartitionError(ValueError):
    """A record's partition value is missing or cannot be a key segment (the record goes to errors)."""


@dataclass(frozen=True, slots=True)
class KeyTemplate:
    """A parsed key template: literal text and placeholders, rendered per record.

    Attributes:
        text: the template as given.
        parts: literal strings and ``(kind, name)`` placeholders, in order.
    """

    text: str
    parts: tuple[str | tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> KeyTemplate:
        """Parse ``text``: an unknown placeholder, a stray brace or a ``..`` segment is a ConfigError."""
        parts: list[str | tuple[str, str]] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append(text[position : match.start()])
            token = match.group(1)
            kind, sep, name = token.partition(":")
            if token in _DATE_PARTS:
                parts.append(("date", token))
            elif sep and kind in ("attr", "field") and name and re.fullmatch(r"[\w.-]+", name):
                parts.append((kind, name))
            else:
                raise ConfigError(
                    f"key template {text!r}: unknown placeholder {{{token}}} (use {{yyyy}} {{MM}} {{dd}} "
                    "{HH}, {attr:NAME} or {field:PATH})"
                )
            position = match.end()
        parts.append(text[position:])
        literal = "".join(p for p in parts if isinstance(p, str))
        if "{" in literal or "}" in literal:
            raise ConfigError(f"key template {text!r}: unbalanced brace")
        if any(segment in (".", "..") for segment in literal.split("/")) or text.startswith("/"):
            raise ConfigError(f"key template {text!r}: no '.', '..' or leading '/' segments")
        return cls(text, tuple(p for p in parts if p != ""))

    @property
    def dynamic(self) -> bool:
        """Whether records may land under different prefixes within one batch (attributes or fields)."""
        return any(isinstance(p, tuple) and p[0] != "date" for p in self.parts)

    def render(self, when: datetime, attributes: Mapping[str, Any] = {}, value: Any = None) -> str:
        """The key prefix for one record; raises :class:`PartitionError` when a partition value is bad."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            kind, name = part
            if kind == "date":
                out.append(when.strftime(_DATE_PARTS[name]))
                continue
            found = attributes.get(name) if kind == "attr" else field_of(value, name)
            out.append(_segment(kind, name, found))
        return "".join(out)


def date_prefix(when: datetime) -> str:
    """``YYYY/MM/dd/HH/`` of ``when`` (the error prefix's date path)."""
    return when.strftime("%Y/%m/%d/%H/")


def field_of(value: Any, path: str) -> Any:
    """The field at a dotted ``path`` of a decoded value (mapping keys or attributes); ``None`` if absent."""
    for name in path.split("."):
        value = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
        if value is None:
            return None
    return value


def _segment(kind: str, name: str, value: Any) -> str:
    if value is None:
        raise PartitionError(f"partition {kind}:{name} is missing")
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise PartitionError(f"partition {kind}:{name} is a {type(value).__name__}, not a scalar")
    if not _SEGMENT.fullmatch(text) or text in (".", ".."):
        raise PartitionError(f"partition {kind}:{name} = {text[:80]!r} cannot be a key segment")
    return text
