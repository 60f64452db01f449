"""OpenTelemetry for qfan: spans and metrics from the pipelines' hooks, trace context carried in messages,
queue backlog gauges, and the Prometheus/health endpoint of ``qfan run --metrics-port``.

The runtime needs only ``opentelemetry-api``; with no SDK provider installed nothing here is registered.
"""

from ._backlog import backlog_queues, poll_backlog
from ._detect import metrics_installed, tracing_installed
from ._hooks import Telemetry, outcome_of
from ._propagation import format_trace_header, parse_trace_header
from ._server import MetricsServer, install_prometheus

__all__ = [
    "MetricsServer",
    "Telemetry",
    "backlog_queues",
    "format_trace_header",
    "install_prometheus",
    "metrics_installed",
    "outcome_of",
    "parse_trace_header",
    "poll_backlog",
    "tracing_installed",
]
