"""Trace context in and out of messages: W3C ``traceparent``/``tracestate`` as message attributes (through
the globally configured propagator), or AWS's ``AWSTraceHeader`` system attribute (X-Ray's format).

Extraction never raises: a malformed ``traceparent`` or ``AWSTraceHeader`` gives no parent, and the message
is processed in a trace of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .._wire._attributes import MAX_ATTRIBUTES, AttributeValue

AWS_TRACE_HEADER = "AWSTraceHeader"
_ROOM = MAX_ATTRIBUTES - 1  # qfan's content-type (or the offload marker) takes one slot


class _Attributes(Getter[Mapping[str, AttributeValue]], Setter[dict[str, str]]):
    def get(self, carrier: Mapping[str, AttributeValue], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, AttributeValue]) -> list[str]:
        return list(carrier)

    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


_ATTRIBUTES = _Attributes()


def inject(attributes: dict[str, AttributeValue], context: Context | None = None) -> None:
    """Add the propagator's fields (``traceparent``, ``tracestate``, ...) to ``attributes`` while they fit.

    Attributes the sender set are never replaced or displaced: a field that would exceed SQS's 10 attributes
    is left out (the trace then ends at this message; use ``AWSTraceHeader`` propagation for such messages).
    """
    fields: dict[str, str] = {}
    propagate.inject(fields, context, setter=_ATTRIBUTES)
    for name, value in fields.items():
        if name not in attributes and len(attributes) < _ROOM and value:
            attributes[name] = value


def extract(attributes: Mapping[str, AttributeValue], trace_header: str | None) -> Context | None:
    """The producer's context: from the attributes, else from ``AWSTraceHeader``; ``None`` when neither
    holds a valid one."""
    if attributes:
        context = propagate.extract(attributes, getter=_ATTRIBUTES)
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
    if trace_header:
        span_context = parse_trace_header(trace_header)
        if span_context is not None:
            return trace.set_span_in_context(NonRecordingSpan(span_context))
    return None


def format_trace_header(span_context: SpanContext) -> str:
    """``Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`` for a valid span context."""
    trace_id = f"{span_context.trace_id:032x}"
    sampled = "1" if span_context.trace_flags.sampled else "0"
    return f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_context.span_id:016x};Sampled={sampled}"


def parse_trace_header(header: str) -> SpanContext | None:
    """The span context an X-Ray ``AWSTraceHeader`` names, or ``None`` when it is malformed."""
    fields: dict[str, str] = {}
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    root, parent = fields.get("Root", ""), fields.get("Parent", "")
    pieces = root.split("-")
    if len(pieces) != 3 or pieces[0] != "1" or len(pieces[1]) != 8 or len(pieces[2]) != 24:
        return None
    if len(parent) != 16:
        return None
    try:
        trace_id, span_id = int(pieces[1] + pieces[2], 16), int(parent, 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if fields.get("Sampled") == "1" else TraceFlags.DEFAULT)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
