"""Receipt handles: opaque to the holder, and readable only by the :class:`MemorySqs` that issued them.

A handle names its queue, its message and which delivery of that message it belongs to, sealed with a
keyed digest, so the plane keeps no table of handles (which would grow with every receive) and still
tells a handle it issued from a made-up or altered one, as SQS does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import NamedTuple


class Receipt(NamedTuple):
    """What a receipt handle stands for."""

    queue_url: str
    message_id: str
    delivery: int


class ReceiptSeal:
    """Issues and reads receipt handles with a key of its own."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(16)

    def issue(self, receipt: Receipt) -> str:
        payload = "\n".join((receipt.queue_url, receipt.message_id, str(receipt.delivery))).encode()
        return base64.urlsafe_b64encode(self._digest(payload) + payload).decode()

    def read(self, handle: str) -> Receipt | None:
        """The receipt behind ``handle``, or ``None`` when this seal did not issue it."""
        try:
            raw = base64.urlsafe_b64decode(handle.encode())
        except (binascii.Error, ValueError):
            return None
        digest, payload = raw[:16], raw[16:]
        if not hmac.compare_digest(digest, self._digest(payload)):
            return None
        url, message_id, delivery = payload.decode().split("\n")
        return Receipt(url, message_id, int(delivery))

    def _digest(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
