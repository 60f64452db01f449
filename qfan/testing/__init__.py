"""In-memory SQS, SNS and S3 behind qfan's transport Protocols, for fast unit tests of code using qfan.

``App(transport=qfan.testing.MemoryTransport())`` runs an app against queues, topics and buckets that live
in the test's own process: no emulator to start, no network, no credentials. The planes keep AWS's
semantics rather than an emulator's — visibility timeouts, receive counts and redrive to dead-letter
queues, FIFO group order and deduplication, long polling, SNS raw and enveloped delivery with filter
policies, capped S3 reads — and raise the same qfan exceptions the AWS planes raise for the same mistakes.

Example::

    transport = qfan.testing.MemoryTransport()
    app = qfan.App("orders", region="us-east-1", transport=transport)
    orders = app.queue("orders")
    async with app:
        await orders.send({"id": 1})
        [message] = await orders.receive()

To test a worker's handler, :class:`Harness` runs the app's workers and reports what they did with each
message it delivers::

    async with qfan.testing.Harness(app) as harness:
        result = await harness.deliver(orders, {"id": 1})
    assert result.acked  # or .retried (result.retry_after), .dead_lettered (result.reason)

``qfan.testing.pytest_plugin`` (an opt-in pytest plugin: ``pytest_plugins = ["qfan.testing.pytest_plugin"]``
in a root ``conftest.py``) provides the ``memory_transport`` and ``qfan_harness`` fixtures.

Apps built on one ``MemoryTransport`` share its state, as processes share one AWS account; make a new one
per test. qfan's own behaviour tests do not use these planes: they run over HTTP against real emulator
processes, and a contract suite (``tests/contract``) holds the memory planes to the same observable
behaviour as the AWS planes.

Attributes:
    MemoryTransport: the transport to hand to ``App``; ``.sqs``, ``.sns`` and ``.s3`` are its planes.
    MemorySqs: SQS's data and control plane.
    MemorySns: SNS, delivering to a ``MemorySqs``.
    MemoryS3: S3 for offloaded payloads.
    Harness: runs an app's workers and reports how each delivered message was settled.
    Delivery: what a worker did with one message (acked, retried, dead-lettered, released).
"""

from ._harness import DeliverOptions, Delivery, Harness
from ._s3 import MemoryS3
from ._sns import MemorySns
from ._sqs import MemorySqs
from ._transport import MemoryTransport

__all__ = ["DeliverOptions", "Delivery", "Harness", "MemoryS3", "MemorySns", "MemorySqs", "MemoryTransport"]
