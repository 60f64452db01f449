"""The AWS limits qfan checks in more than one module, defined once.

Values are AWS's documented quotas, not qfan's choices; qfan checks them before calling, so that a wrong
value is a :class:`~qfan.ConfigError` at the call site rather than an ``InvalidParameterValue`` from SQS.
"""

from __future__ import annotations

#: The longest visibility timeout SQS accepts, in seconds (12 hours): for ``ReceiveMessage``,
#: ``ChangeMessageVisibility`` and a queue's ``VisibilityTimeout`` alike. It also caps backoff delays, which
#: qfan applies through the visibility timeout.
MAX_VISIBILITY = 43_200

#: The longest ``DelaySeconds`` SQS accepts, per message or per queue (15 minutes); longer delays travel in
#: hops of at most this (see ``qfan._pipeline._delays``).
MAX_DELAY = 900


def utf8_size(text: str) -> int:
    """Bytes ``text`` takes in UTF-8, without encoding it when it is ASCII (an O(1) check in CPython): a
    300 KiB body is measured, not copied."""
    return len(text) if text.isascii() else len(text.encode())
