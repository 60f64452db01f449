"""The HTTP endpoint of ``qfan run --metrics-port``: Prometheus ``/metrics`` (the text format written by
``prometheus_client``, fed by OpenTelemetry's Prometheus exporter), ``/healthz`` and ``/readyz``.

It runs in a daemon thread with the standard library's HTTP server, so a busy event loop never delays a
scrape or a probe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._exceptions import ConfigError
from ._detect import metrics_installed


def install_prometheus() -> None:
    """Install an SDK ``MeterProvider`` exporting to Prometheus, unless the application installed one
    (which then needs its own ``PrometheusMetricReader`` for ``/metrics`` to show qfan's metrics)."""
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError("--metrics-port needs the otel extra: pip install 'qfan[otel]'") from exc
    if not metrics_installed():
        metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` (the process answers) and ``/readyz`` (``ready()`` is true).

    Args:
        port: TCP port (0: any free one, see :attr:`port`).
        ready: whether the app is ready (``App.ready``).
        host: address to listen on.
    """

    def __init__(self, port: int, ready: Callable[[], bool], host: str = "0.0.0.0") -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._answer(200, b"ok\n")
                elif path == "/readyz":
                    ok = ready()
                    self._answer(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
                else:
                    self._answer(404, b"not found\n")

            def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="qfan-metrics", daemon=True)

    def __enter__(self) -> MetricsServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
