"""Keeping credentials out of log output and error texts.

Two nets, because neither catches everything alone:

* patterns: whatever follows an ``Authorization`` header name, a security/session token or secret key
  name (headers, query strings, canonical requests, config files, STS answers), and SigV4 signatures. They
  need no knowledge of the credentials in use, so they also cover credentials qfan never saw (a profile's,
  a refreshed token).
* a registry of the secret values in use (:func:`register_secret`): catches a secret wherever it turns up,
  with or without a recognisable name in front of it (an exception text, a debug print of a config).

This is the lowest layer of qfan, so the transport, the settings and the CLI can all use it. It costs a
regular-expression pass per call, so it is applied to error texts and log records, never per message.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote

__all__ = ["REDACTED", "RedactingFilter", "install_redaction", "redact", "register_secret"]

REDACTED = "***"

# Shorter values are not AWS secrets (secret keys are 40 characters, session tokens hundreds) and would
# blank out ordinary words, such as the emulators' "testing" credentials, all over the output.
_MIN_SECRET_LENGTH = 8
# Refreshed session tokens keep coming in a long-running process; the old ones are expired and useless,
# so only the most recent few are worth the cost of matching.
_MAX_SECRETS = 32

# Each branch is (?P<name>what stays)what goes: the replacement keeps the named group, drops the rest.
_SEPARATOR = r"""(?:['"]?\s*[:=]\s*b?['"]?|>)"""  # header, query, dict repr, JSON, "key = value", XML
_VALUE = r"""(?!None\b)[^\s'"&,;<>(){}\[\]\\]+"""  # a token or key: ends at a delimiter or an escape
_PATTERN = re.compile(
    # The whole value of an Authorization header: it holds the key id, the signed headers and the signature.
    rf"""(?P<authorization>\bauthorization['"]?\s*[:=]\s*b?['"]?)[^'"\r\n]+"""
    # X-Amz-Security-Token, SecurityToken, SessionToken, aws_session_token, ...
    rf"|(?P<token>(?:security|session)[-_]?token{_SEPARATOR}){_VALUE}"
    # aws_secret_access_key = ..., SecretAccessKey: ..., AWS_SECRET_ACCESS_KEY=...
    rf"|(?P<secret>secret[-_]?access[-_]?key{_SEPARATOR}){_VALUE}"
    # Signature=<hex> in an Authorization header or a presigned URL, and botocore's "Signature:\n<hex>".
    r"|(?P<signature>\bsignature\s*[:=]\s*)[0-9a-f]{16,}",
    re.IGNORECASE,
)

_lock = threading.Lock()
_secrets: dict[str, tuple[str, ...]] = {}  # registered value -> the forms to look for; oldest first
_secret_pattern: re.Pattern[str] | None = None


def _keep_name(match: re.Match[str]) -> str:
    return f"{match.group(match.lastgroup or 0)}{REDACTED}"


def register_secret(value: str | None) -> None:
    """Have :func:`redact` (and so qfan's log filter and error texts) hide ``value`` from now on.

    Meant for the secret access key and the session token in use, each time credentials are resolved or
    refreshed. Cheap when the value is already known, so it may be called per request.

    Args:
        value: the secret; ``None``, empty and very short values (under 8 characters) are ignored.
    """
    global _secret_pattern
    if not value or len(value) < _MIN_SECRET_LENGTH or value in _secrets:
        return
    with _lock:
        if value in _secrets:
            return
        # Tokens contain '+', '/' and '=', which appear percent-encoded in query strings and URLs.
        _secrets[value] = tuple(dict.fromkeys((value, quote(value, safe=""))))
        while len(_secrets) > _MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
        forms = sorted({form for known in _secrets.values() for form in known}, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(map(re.escape, forms)))


def redact(text: str) -> str:
    """Hide credentials in ``text``.

    Args:
        text: a log message, exception text or error message from a server.

    Returns:
        ``text`` with registered secrets, Authorization header values, security/session tokens, secret
        access keys and SigV4 signatures replaced by ``***`` (the names in front of them are kept).
    """
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _PATTERN.sub(_keep_name, text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs each record's formatted message, exception text and stack with
    :func:`redact`; it never drops a record.

    Install it on handlers (:func:`install_redaction`): a handler's filters see the records of every
    logger that propagates to it, a logger's filters only that logger's own records.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging would print msg and args raw in its error report
            message = f"{record.msg!s} (arguments that did not format: {record.args!r})"
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text instead of formatting the exception again.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(target: logging.Handler | logging.Logger) -> None:
    """Add a :class:`RedactingFilter` to a handler (or logger), once.

    Args:
        target: preferably a handler: a logger's filters do not see records propagated from its children.
    """
    if not any(isinstance(existing, RedactingFilter) for existing in target.filters):
        target.addFilter(RedactingFilter())
