"""Whether the application installed an OpenTelemetry SDK: checked once, when an app opens.

The API's defaults (a proxy waiting for a provider, or the no-op one) mean nobody listens: then qfan
registers no hooks at all, and its pipelines skip them (one truth test per batch or message).
"""

from __future__ import annotations

from opentelemetry import metrics, trace

_NO_OP = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"})


def tracing_installed() -> bool:
    """A real ``TracerProvider`` is set globally (not the API's proxy or no-op)."""
    return type(trace.get_tracer_provider()).__name__ not in _NO_OP


def metrics_installed() -> bool:
    """A real ``MeterProvider`` is set globally (not the API's proxy or no-op)."""
    return type(metrics.get_meter_provider()).__name__ not in _NO_OP
