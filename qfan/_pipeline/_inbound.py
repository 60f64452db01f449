"""The one way a message arrives, whoever received it (a queue handle, a worker, the reply router).

raw SQS message -> not due yet (a long delay)? sent again, one hop later -> MD5 digests verified -> SNS
envelope unwrapped (only from the accepted topics) -> an S3 pointer checked against the offload policy -> its
payload fetched -> :class:`Message`. A message that fails
any step carries the typed error and raises it from ``body``; the others of the same receive are unaffected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from .._transport import ReceivedMessage
from .._wire._codec import Decoder
from .._wire._envelope import AcceptedTopics
from ._delays import Postponer
from ._hooks import HookSet
from ._message import Message, Settler
from ._payloads import Payloads, fetch_all

T = TypeVar("T")


async def arrive(
    received: Sequence[ReceivedMessage],
    decoder: Decoder[T],
    settler: Settler,
    payloads: Payloads | None,
    topics: AcceptedTopics | None = None,
    hooks: HookSet | None = None,
    postpone: Postponer | None = None,
) -> list[Message[T]]:
    """Turn received messages into :class:`Message` objects (payloads fetched concurrently).

    With ``postpone``, messages whose long delay has not run out are re-queued, never returned.
    """
    if postpone is not None:
        received = await postpone.due(received)
    fetched = await fetch_all(received, payloads, topics)
    messages = [Message(raw, decoder, settler, f, topics) for raw, f in zip(received, fetched, strict=True)]
    if hooks:
        hooks.after_receive(settler.name, messages)
    return messages
