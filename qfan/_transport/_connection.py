"""What an open App hands to queue handles: the SQS planes, S3 when payloads are offloaded, and the retry
policy that wraps every call."""

from __future__ import annotations

from dataclasses import dataclass

from ._base import ObjectStore, SqsControlPlane, SqsDataPlane
from ._retry import RetryPolicy
from ._sns import BotocoreSns


@dataclass(frozen=True, slots=True)
class SqsConnection:
    """An open connection to SQS.

    Attributes:
        data: the hot per-message calls.
        control: queue management calls.
        retry: the policy every call goes through.
        linger: seconds a batch waits for more entries before it is sent.
        s3: object storage for offloaded payloads (``None`` when no queue offloads).
    """

    data: SqsDataPlane
    control: SqsControlPlane
    retry: RetryPolicy
    linger: float
    s3: ObjectStore | None = None


@dataclass(frozen=True, slots=True)
class SnsConnection:
    """An open connection to SNS, with the retry policy and batching linger of its app."""

    sns: BotocoreSns
    retry: RetryPolicy
    linger: float
    s3: ObjectStore | None = None
