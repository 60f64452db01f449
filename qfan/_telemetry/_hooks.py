"""OpenTelemetry spans and metrics for every message, emitted from the pipelines' hooks, once.

Spans (OpenTelemetry messaging conventions; ``messaging.system`` ``aws_sqs`` or ``aws_sns``):

- ``create <destination>`` (PRODUCER, ``messaging.operation.type=create``): one per message sent or
  published, in the sender's context; its context travels with the message (see :mod:`._propagation`).
- ``receive <queue>`` (CLIENT, ``receive``): one per receive call that brought messages, with a link to each
  message's creation context (a batch has many parents, so links; a receive of one message is also its
  child).
- ``process <queue>`` (CONSUMER, ``process``): around each single-message handler, a child of the message's
  creation context; a handler exception is recorded on it (status ERROR, exception event) and the settle
  decision is an event on it (``qfan.settle``: outcome, reason, retry delay). Around a batch handler, one
  span with a link to each message's creation context (and the batch's exception, if it raised).
  Messages that never reach a single-message handler (poison, batch handlers) get a ``settle <queue>``
  span (CLIENT, ``settle``) with the same event, as a child of their creation context.
- ``S3.PutObject`` / ``S3.GetObject`` (CLIENT): each S3 call storing or fetching an offloaded body, a child
  of the message's creation context (with its real start and end).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider

from .._exceptions import ConfigError, QfanError
from .._pipeline._hooks import CallNext, PayloadCall, PipelineHooks
from .._pipeline._message import Message
from .._pipeline._outgoing import Destination
from .._rpc._protocol import CORRELATION_ID, RESPONSE_QUEUE_URL
from .._wire._attributes import TRACE_HEADER, AttributeValue
from .._worker._settle import Action, DeadLetter, Release, RetryAfter
from ._detect import tracing_installed
from ._metrics import Instruments
from ._propagation import extract, format_trace_header, inject

if TYPE_CHECKING:
    from .._worker._worker import Worker

SYSTEM = "messaging.system"
OPERATION = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
CONVERSATION_ID = "messaging.message.conversation_id"
BATCH_COUNT = "messaging.batch.message_count"
ERROR_TYPE = "error.type"
OUTCOME = "qfan.outcome"
WORKER = "qfan.worker"
_REMEMBER = 4096  # received messages whose extracted trace context is kept for their process span
_UNKNOWN: Any = object()


def outcome_of(action: Action) -> str:
    """``acked``, ``retried``, ``dead_lettered`` or ``released``: the label of a settle decision."""
    if isinstance(action, RetryAfter):
        return "retried"
    if isinstance(action, DeadLetter):
        return "dead_lettered"
    if isinstance(action, Release):
        return "released"
    return "acked"


class Telemetry(PipelineHooks):
    """Traces and metrics through the globally installed OpenTelemetry providers.

    An app registers one by itself when it opens and an SDK provider is installed; register your own
    (``App(hooks=[qfan.Telemetry(...)])``) to change the options.

    Args:
        backlog_interval: seconds between two reads of each consumed queue's backlog
            (``GetQueueAttributes``) while :meth:`qfan.App.run` runs; ``None`` turns the backlog gauges off.
        propagation: how a message carries its trace context to a queue: ``"attributes"`` (default: W3C
            ``traceparent``/``tracestate`` message attributes, through the globally configured propagator)
            or ``"aws"`` (SQS's ``AWSTraceHeader`` system attribute in X-Ray's format, which spends none of
            the 10 attribute slots). Topics always use attributes (SNS has no such system attribute).
        tracer_provider: where spans go (default: the global provider; without an SDK one, no spans).
        meter_provider: where metrics go (default: the global provider).
    """

    def __init__(
        self,
        *,
        propagation: Literal["attributes", "aws"] = "attributes",
        backlog_interval: float | None = 60.0,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if backlog_interval is not None and backlog_interval <= 0:
            raise ConfigError(f"backlog_interval must be positive seconds or None, got {backlog_interval!r}")
        if propagation not in ("attributes", "aws"):
            raise ConfigError(f"propagation must be 'attributes' or 'aws', got {propagation!r}")
        self.propagation = propagation
        self.backlog_interval = backlog_interval
        self._tracing = tracer_provider is not None or tracing_installed()
        self._tracer = trace.get_tracer("qfan", tracer_provider=tracer_provider)
        self.instruments = Instruments(meter_provider)
        self._open: dict[Message[Any], Span] = {}
        self._contexts: dict[Message[Any], Context | None] = {}  # extracted on receive, used on process
        self._workers: dict[str, str] = {}  # queue name -> worker name

    def watch(self, workers: Iterable[Worker]) -> None:
        """Label metrics of the queues these workers consume with the worker's name; gauge their holdings."""
        for worker in workers:
            for queue in worker.queue.consumed_levels().queues.values():
                self._workers[queue.name] = worker.name
            self.instruments.watch(worker)

    # -- sending --------------------------------------------------------------------------------------

    def before_send_to(self, destination: Destination, attributes: dict[str, AttributeValue]) -> None:
        if RESPONSE_QUEUE_URL in attributes:  # a request: its reply's arrival measures the round trip
            self.instruments.request_sent(attributes.get(CORRELATION_ID), destination.name)
        if not self._tracing:
            return
        span = self._tracer.start_span(
            f"create {destination.name}",
            kind=SpanKind.PRODUCER,
            attributes={
                SYSTEM: destination.system,
                OPERATION: "create",
                OPERATION_NAME: "publish" if destination.system == "aws_sns" else "send",
                DESTINATION: destination.name,
            },
        )
        if self.propagation == "aws" and destination.system == "aws_sqs":
            attributes.setdefault(TRACE_HEADER, format_trace_header(span.get_span_context()))
        else:
            inject(attributes, trace.set_span_in_context(span))
        span.end()

    def after_send_to(self, destination: Destination, result: str | QfanError) -> None:
        self.instruments.sent(destination.system, destination.name, result)

    # -- receiving ------------------------------------------------------------------------------------

    def after_receive_batch(self, queue: str, messages: Sequence[Message[Any]]) -> None:
        self.instruments.received(queue, self._workers.get(queue, ""), messages)
        for message in messages:
            if CORRELATION_ID in message.attributes:  # a reply (or a request, which is never pending)
                self.instruments.reply_received(message.attributes[CORRELATION_ID])
        if not self._tracing or not messages:
            return
        contexts = [extract(m.attributes, m.trace_header) for m in messages]
        remembered = self._contexts
        for message, context in zip(messages, contexts, strict=True):  # for its process span, if a worker's
            remembered[message] = context
        while len(remembered) > _REMEMBER:  # messages received outside workers are never processed here
            del remembered[next(iter(remembered))]
        links = [
            Link(trace.get_current_span(c).get_span_context(), {MESSAGE_ID: m.message_id})
            for m, c in zip(messages, contexts, strict=True)
            if c is not None
        ]
        parent = contexts[0] if len(messages) == 1 else None
        span = self._tracer.start_span(
            f"receive {queue}",
            context=parent or Context(),
            kind=SpanKind.CLIENT,
            links=links,
            attributes={
                SYSTEM: "aws_sqs",
                OPERATION: "receive",
                OPERATION_NAME: "receive",
                DESTINATION: queue,
                BATCH_COUNT: len(messages),
            },
        )
        span.end()

    def after_payload(self, call: PayloadCall) -> None:
        if call.size is not None and call.error is None:
            self.instruments.offloaded(call.operation, call.destination, call.size)
        if not self._tracing:
            return
        text = {k: v.string_value for k, v in call.attributes.items() if v.string_value is not None}
        span = self._tracer.start_span(
            f"S3.{call.operation}",
            context=extract(text, None) or Context(),
            kind=SpanKind.CLIENT,
            start_time=call.started,
            attributes={
                "rpc.system": "aws-api",
                "rpc.service": "S3",
                "rpc.method": call.operation,
                "aws.s3.bucket": call.location.bucket,
                "aws.s3.key": call.location.key,
                DESTINATION: call.destination,
            },
        )
        if call.error is not None:
            span.record_exception(call.error)
            span.set_status(Status(StatusCode.ERROR, str(call.error)))
            span.set_attribute(ERROR_TYPE, type(call.error).__name__)
        span.end(end_time=call.ended)

    # -- handling -------------------------------------------------------------------------------------

    async def around_handler(self, message: Message[Any], call_next: CallNext) -> Any:
        started = time.monotonic()
        self.instruments.started(message)
        if not self._tracing:
            try:
                return await call_next()
            finally:
                self.instruments.finished(message, time.monotonic() - started)
        span = self._open[message] = self._span(message, "process", SpanKind.CONSUMER)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                return await call_next()
        except Exception as exc:  # the span stays open for the settle decision (after_settle ends it)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
            raise
        except BaseException:  # cancelled: the message is given back, never settled
            del self._open[message]
            span.end()
            raise
        finally:
            self.instruments.finished(message, time.monotonic() - started)

    async def around_batch(self, messages: list[Message[Any]], call_next: CallNext) -> Any:
        if not self._tracing:
            return await call_next()
        contexts = [self._contexts.pop(m, _UNKNOWN) for m in messages]
        contexts = [
            extract(m.attributes, m.trace_header) if c is _UNKNOWN else c
            for m, c in zip(messages, contexts, strict=True)
        ]
        queue = messages[0].queue
        span = self._tracer.start_span(
            f"process {queue}",
            context=Context(),
            kind=SpanKind.CONSUMER,
            links=[Link(trace.get_current_span(c).get_span_context()) for c in contexts if c is not None],
            attributes={
                SYSTEM: "aws_sqs",
                OPERATION: "process",
                OPERATION_NAME: "process",
                DESTINATION: queue,
                BATCH_COUNT: len(messages),
            },
        )
        with trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True):
            return await call_next()

    def after_settle(self, message: Message[Any], action: Action) -> None:
        outcome = outcome_of(action)
        self.instruments.settled(message, self._workers.get(message.queue, ""), outcome)
        opened = self._open.pop(message, None)
        if not self._tracing:
            return
        span = opened if opened is not None else self._span(message, "settle", SpanKind.CLIENT)
        event: dict[str, AttributeValue] = {OUTCOME: outcome}
        if isinstance(action, DeadLetter | RetryAfter) and action.reason:
            event["qfan.reason"] = action.reason
        if isinstance(action, RetryAfter):
            event["qfan.retry_after"] = action.delay
        span.add_event("qfan.settle", event)
        span.end()

    def _span(self, message: Message[Any], operation: str, kind: SpanKind) -> Span:
        attributes: dict[str, AttributeValue] = {
            SYSTEM: "aws_sqs",
            OPERATION: operation,
            OPERATION_NAME: operation,
            DESTINATION: message.queue,
            MESSAGE_ID: message.message_id,
            "qfan.receive_count": message.receive_count,
        }
        conversation = message.attributes.get(CORRELATION_ID)
        if isinstance(conversation, str):
            attributes[CONVERSATION_ID] = conversation
        remembered = self._contexts.pop(message, _UNKNOWN)
        parent = extract(message.attributes, message.trace_header) if remembered is _UNKNOWN else remembered
        return self._tracer.start_span(
            f"{operation} {message.queue}", context=parent or Context(), kind=kind, attributes=attributes
        )
