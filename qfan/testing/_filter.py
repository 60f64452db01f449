"""SNS subscription filter policies: checking a policy as SNS checks it, and matching a message against it.

Supported, as SNS defines them: exact strings and numbers, a list of conditions meaning any of them, nested
keys (body scope), ``$or``, and the operators ``prefix``, ``suffix``, ``equals-ignore-case``,
``anything-but`` (a value, a list, or a ``prefix``/``suffix``), ``numeric`` (``=``, ``<``, ``<=``, ``>``,
``>=``, one or two comparisons), ``exists`` and ``cidr``. Numbers match attributes of type ``Number`` (and
numbers in a JSON body); strings match ``String`` values; ``Binary`` attributes match only ``exists``.
"""

from __future__ import annotations

import ipaddress
import json
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .._transport import WireAttribute
from ._common import parse_number

_NUMERIC: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_OPERATORS = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr"}
)
_ABSENT = object()


class FilterPolicyError(ValueError):
    """The filter policy is not one SNS accepts; the message says why."""


def parse_policy(text: str, scope: str) -> dict[str, Any]:
    """The policy as JSON, checked as SNS checks it when it is set (``FilterPolicyError`` otherwise).

    ``""`` and ``{}`` are the empty policy, which lets everything through (setting it clears a filter).
    """
    try:
        policy = json.loads(text or "{}")
    except ValueError as exc:
        raise FilterPolicyError(f"failed to parse JSON: {exc}") from None
    if not isinstance(policy, dict):
        raise FilterPolicyError("the policy must be a JSON object")
    _check(policy, nested_allowed=scope == "MessageBody")
    return policy


def _check(policy: Mapping[str, Any], *, nested_allowed: bool) -> None:
    for key, rule in policy.items():
        if key == "$or":
            if not isinstance(rule, list) or len(rule) < 2 or not all(isinstance(r, dict) for r in rule):
                raise FilterPolicyError("$or takes a list of at least two policies")
            for alternative in rule:
                _check(alternative, nested_allowed=nested_allowed)
        elif isinstance(rule, dict):
            if not nested_allowed:
                raise FilterPolicyError(f"{key}: nested keys are only allowed with the MessageBody scope")
            _check(rule, nested_allowed=True)
        elif isinstance(rule, list) and rule:
            for condition in rule:
                _check_condition(key, condition)
        else:
            raise FilterPolicyError(f"{key}: a rule is a non-empty list of conditions")


def _check_condition(key: str, condition: Any) -> None:
    if not isinstance(condition, dict):
        return  # a string, number, boolean or null: an exact match
    if len(condition) != 1 or next(iter(condition)) not in _OPERATORS:
        raise FilterPolicyError(f"{key}: unrecognized match type {next(iter(condition), '')!r}")
    name, argument = next(iter(condition.items()))
    if name == "numeric":
        if not isinstance(argument, list) or len(argument) not in (2, 4):
            raise FilterPolicyError(f"{key}: numeric takes one or two comparisons")
        for op, value in zip(argument[::2], argument[1::2], strict=True):
            if op not in _NUMERIC or isinstance(value, bool) or not isinstance(value, int | float):
                raise FilterPolicyError(f"{key}: bad numeric comparison {op!r} {value!r}")
    elif name == "exists" and not isinstance(argument, bool):
        raise FilterPolicyError(f"{key}: exists takes true or false")
    elif name in ("prefix", "suffix", "equals-ignore-case", "cidr") and not isinstance(argument, str):
        raise FilterPolicyError(f"{key}: {name} takes a string")


def matches_attributes(policy: Mapping[str, Any], attributes: Mapping[str, WireAttribute]) -> bool:
    """Whether a message with these attributes passes a ``MessageAttributes``-scope policy."""
    values = {name: _attribute_values(attribute) for name, attribute in attributes.items()}
    return _matches(policy, values)


def matches_body(policy: Mapping[str, Any], body: str) -> bool:
    """Whether a message with this body passes a ``MessageBody``-scope policy (a non-JSON body never does)."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and _matches(policy, document)


def _attribute_values(attribute: WireAttribute) -> Any:
    kind = attribute.data_type.split(".", 1)[0]
    text = attribute.string_value or ""
    if kind == "Number":
        return parse_number(text)
    if attribute.data_type.startswith("String.Array"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        return parsed if isinstance(parsed, list) else text
    if kind == "Binary":
        return _Opaque()
    return text


class _Opaque:
    """A value that exists but matches no condition (a binary attribute)."""


def _matches(policy: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    for key, rule in policy.items():
        if key == "$or":
            if not any(_matches(alternative, document) for alternative in rule):
                return False
            continue
        value = document.get(key, _ABSENT)
        if isinstance(rule, dict):
            nested = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]
            if not any(_matches(rule, v) for v in nested):
                return False
        elif not _rule_matches(rule, value):
            return False
    return True


def _rule_matches(conditions: list[Any], value: Any) -> bool:
    if value is _ABSENT:
        return any(isinstance(c, dict) and c.get("exists") is False for c in conditions)
    candidates = value if isinstance(value, list) else [value]
    return any(_condition_matches(c, v) for c in conditions for v in candidates)


def _condition_matches(condition: Any, value: Any) -> bool:
    if isinstance(condition, dict):
        name, argument = next(iter(condition.items()))
        return _operator_matches(name, argument, value)
    return _equals(condition, value)


def _equals(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or expected is None:
        return value is expected
    if isinstance(expected, int | float):
        number = _as_number(value)
        return number is not None and number == Decimal(str(expected))
    return isinstance(value, str) and value == expected


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return None


def _operator_matches(name: str, argument: Any, value: Any) -> bool:
    if name == "exists":
        return bool(argument)
    if name == "anything-but":
        return _anything_but(argument, value)
    if name == "numeric":
        number = _as_number(value)
        return number is not None and all(
            _NUMERIC[op](number, Decimal(str(bound)))
            for op, bound in zip(argument[::2], argument[1::2], strict=True)
        )
    if not isinstance(value, str):
        return False
    if name == "prefix":
        return value.startswith(argument)
    if name == "suffix":
        return value.endswith(argument)
    if name == "equals-ignore-case":
        return value.casefold() == str(argument).casefold()
    return _in_network(value, argument)  # cidr


def _anything_but(argument: Any, value: Any) -> bool:
    if isinstance(value, _Opaque):
        return False
    if isinstance(argument, dict):
        (name, text), *_ = argument.items()
        return isinstance(value, str) and not _operator_matches(name, text, value)
    excluded = argument if isinstance(argument, list) else [argument]
    return not any(_equals(item, value) for item in excluded)


def _in_network(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
