"""Trace context in message attributes and in AWSTraceHeader: pure, without I/O."""

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from qfan._telemetry import format_trace_header, outcome_of, parse_trace_header
from qfan._telemetry._propagation import extract, inject
from qfan._worker._settle import DeadLetter, Delete, Release, RetryAfter, Settled

CONTEXT = SpanContext(
    0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, is_remote=False, trace_flags=TraceFlags(1)
)
HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def test_trace_header_round_trip() -> None:
    assert format_trace_header(CONTEXT) == HEADER
    parsed = parse_trace_header(HEADER)
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.trace_flags.sampled) == (
        CONTEXT.trace_id,
        CONTEXT.span_id,
        True,
    )
    assert parsed.is_remote


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "Root=1-5759e988-bd862e3fe1be46a994272793",  # no parent
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",  # unknown version
        "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",  # short id
        "Root=1-5759e988-bd862e3fe1be46a99427279x;Parent=53995c3f42cd8ad8",  # not hex
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",  # zero trace id
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",  # zero span id
    ],
)
def test_malformed_trace_headers_give_no_context(header: str) -> None:
    assert parse_trace_header(header) is None
    assert extract({}, header) is None


def test_inject_then_extract_continues_the_span() -> None:
    attributes: dict[str, object] = {"kind": "jpeg"}
    inject(attributes, trace.set_span_in_context(NonRecordingSpan(CONTEXT)))  # type: ignore[arg-type]
    assert attributes["traceparent"] == "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    context = extract(attributes, None)  # type: ignore[arg-type]
    assert context is not None
    assert trace.get_current_span(context).get_span_context().span_id == CONTEXT.span_id


def test_inject_never_displaces_the_senders_attributes() -> None:
    context = trace.set_span_in_context(NonRecordingSpan(CONTEXT))
    full = {f"a{i}": "x" for i in range(9)}  # SQS allows 10, qfan's content-type takes one
    inject(full, context)  # type: ignore[arg-type]
    assert full == {f"a{i}": "x" for i in range(9)}
    own = {"traceparent": "00-mine"}
    inject(own, context)  # type: ignore[arg-type]
    assert own == {"traceparent": "00-mine"}


def test_attributes_win_over_the_trace_header_and_garbage_falls_back() -> None:
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    context = extract({"traceparent": other}, HEADER)
    assert context is not None
    assert trace.get_current_span(context).get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    context = extract({"traceparent": "00-garbage"}, HEADER)
    assert context is not None
    assert trace.get_current_span(context).get_span_context().trace_id == CONTEXT.trace_id
    assert extract({"traceparent": b"\x00"}, None) is None
    assert extract({"traceparent": "00-garbage"}, None) is None


@pytest.mark.parametrize(
    ("action", "outcome"),
    [
        (Delete(), "acked"),
        (Settled(), "acked"),
        (RetryAfter(3), "retried"),
        (RetryAfter(900, undeliverable=True, reason="failed 5 times"), "retried"),
        (DeadLetter("rejected: no", ValueError()), "dead_lettered"),
        (Release(), "released"),
    ],
)
def test_outcome_labels(action: object, outcome: str) -> None:
    assert outcome_of(action) == outcome  # type: ignore[arg-type]
