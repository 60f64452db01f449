"""Request/response over queues: requests carry a reply address; one reply queue per requesting process.

A request is a normal message on the request queue carrying two attributes: ``ResponseQueueUrl`` (the reply
address, as AWS's Java temporary-queues client names it) and ``qfan-correlation-id``. The responder sends its
answer to that address, if it is an allowed reply queue, with the same correlation id (and
``qfan-error-type`` when its handler raised). Large bodies go through S3 both ways, under the request
queue's ``Offload`` policy.

- ``_protocol``: attribute names, reply queue naming, tags and limits.
- ``_requester``: the reply queue and the loop that routes replies to waiting requests.
- ``_responder``: the reply-address rule, the responder's handler and the reply sender.
- ``_sweep``: deleting reply queues whose requester died.
"""

from ._protocol import (
    CORRELATION_ID,
    ERROR_TYPE,
    MIN_SWEEP_IDLE,
    REPLY_PREFIX,
    RESPONSE_QUEUE_URL,
    RpcStats,
)
from ._requester import ReplyRouter
from ._responder import ReplyAddresses, ReplySender, Responder
from ._sweep import check_sweep_idle, sweep_reply_queues

__all__ = [
    "CORRELATION_ID",
    "ERROR_TYPE",
    "MIN_SWEEP_IDLE",
    "REPLY_PREFIX",
    "RESPONSE_QUEUE_URL",
    "ReplyAddresses",
    "ReplyRouter",
    "ReplySender",
    "Responder",
    "RpcStats",
    "check_sweep_idle",
    "sweep_reply_queues",
]
