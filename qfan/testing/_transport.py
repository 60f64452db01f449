"""The in-memory transport: one account's SQS, SNS and S3, opened by as many apps as share it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Unpack

from ._common import Account
from ._s3 import MemoryS3
from ._sns import MemorySns
from ._sqs import MemorySqs

if TYPE_CHECKING:
    from .._transport import ConnectionSettings, ObjectStore, SnsPlane, SqsControlPlane, SqsDataPlane


class MemoryTransport:
    """A :class:`~qfan._transport.Transport` whose planes live in this process's memory.

    Every ``open_*`` call hands out the same planes, so apps built on one ``MemoryTransport`` share queues,
    topics and buckets, as processes share one AWS account; build a new one per test for isolation. The
    connection settings (endpoints, region, credentials) are ignored.

    Args:
        account_id: the account in queue URLs and ARNs.
        region: the region in ARNs.
        clock: monotonic seconds that visibility timeouts, delays and deduplication windows run on.

    Attributes:
        sqs: the queues, to inspect or to use directly.
        sns: the topics and subscriptions.
        s3: the buckets.
    """

    name: str = "memory"

    def __init__(self, **account: Unpack[Account]) -> None:
        self.sqs = MemorySqs(**account)
        self.sns = MemorySns(self.sqs)
        self.s3 = MemoryS3()

    def open_sqs(
        self, settings: ConnectionSettings
    ) -> AbstractAsyncContextManager[tuple[SqsDataPlane, SqsControlPlane]]:
        """The SQS planes (one object serves both), for as long as the caller likes."""
        return nullcontext((self.sqs, self.sqs))

    def open_sns(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[SnsPlane]:
        """The SNS plane."""
        return nullcontext(self.sns)

    def open_s3(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[ObjectStore]:
        """The S3 plane."""
        return nullcontext(self.s3)

    def __repr__(self) -> str:
        return f"<MemoryTransport account={self.sqs.account_id!r}>"
