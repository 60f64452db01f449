"""What an open App hands to queue handles: the SQS planes plus the retry policy that wraps every call."""

from __future__ import annotations

from dataclasses import dataclass

from ._base import SqsControlPlane, SqsDataPlane
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
    """

    data: SqsDataPlane
    control: SqsControlPlane
    retry: RetryPolicy
    linger: float


@dataclass(frozen=True, slots=True)
class SnsConnection:
    """An open connection to SNS, with the retry policy and batching linger of its app."""

    sns: BotocoreSns
    retry: RetryPolicy
    linger: float
