"""``MemoryTransport`` itself: a ``Transport``, whose opens share one account's state."""

from __future__ import annotations

from qfan._transport import ConnectionSettings, SendEntry, Transport
from qfan.testing import MemoryTransport


async def test_opens_share_one_account() -> None:
    transport = MemoryTransport()
    assert isinstance(transport, Transport)
    assert transport.name == "memory"
    settings = ConnectionSettings(region="us-east-1")
    async with transport.open_sqs(settings) as (_, control), transport.open_sqs(settings) as (data, _):
        url = await control.create_queue("shared", {}, {})
        assert url == "http://memory.local/123456789012/shared"
        await data.send_batch(url, [SendEntry("a", "seen by both")])
    async with transport.open_sqs(settings) as (data, _):
        [message] = await data.receive(url, max_messages=1, wait_seconds=0, visibility_timeout=None)
    assert message.body == "seen by both"
    assert await MemoryTransport().sqs.list_queues("") == []  # another transport: another account
