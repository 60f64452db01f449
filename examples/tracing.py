"""One order through SNS fanout to two workers, traced with OpenTelemetry: prints the trace tree.

The application only installs an OpenTelemetry SDK ``TracerProvider``; qfan finds it when the app opens
and emits its spans (no qfan-specific call). Spans go to the SDK's console exporter (one line each), or
over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (``pip install opentelemetry-exporter-otlp``).
Needs ``pip install 'qfan[otel,local]'``. Run:  python examples/tracing.py
"""

import os

import anyio
import msgspec
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import qfan


class Order(msgspec.Struct):
    id: int
    item: str


def install_tracing() -> InMemorySpanExporter:
    """The application's usual OpenTelemetry set-up, plus an in-memory copy to print the tree from."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        def one_line(span: ReadableSpan) -> str:
            return f"exported: {span.name} ({span.kind.name.lower()})\n"

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


app = qfan.App("shop")
orders = app.topic("orders", Order)
billing = app.queue("billing", Order)
shipping = app.queue("shipping", Order)
app.subscribe(orders, billing)  # raw delivery
app.subscribe(orders, shipping, raw=False)  # SNS's JSON envelope: the trace survives it too
done: list[str] = []


@app.worker(billing)
async def bill(order: Order) -> None:
    with trace.get_tracer("shop").start_as_current_span("charge card"):  # a child of qfan's process span
        done.append("billing")


@app.worker(shipping)
async def ship(order: Order) -> None:
    done.append("shipping")


def print_tree(spans: list[ReadableSpan]) -> None:
    """Print each trace as an indented tree of spans, with qfan's settle events."""
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        print(f"{'  ' * depth}{span.name}  [{span.kind.name.lower()}, {took:.1f} ms]")
        for event in span.events:
            if event.name == "qfan.settle":
                print(f"{'  ' * depth}  · settled: {dict(event.attributes or {})}")
        assert span.context is not None
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        assert root.context is not None
        print(f"trace {root.context.trace_id:032x}")
        show(root, 1)


async def main() -> None:
    memory = install_tracing()
    tracer = trace.get_tracer("shop")
    async with qfan.local(), app, anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        with tracer.start_as_current_span("checkout"):
            await orders.publish(Order(1, "pen"))
        with anyio.fail_after(30):
            while len(done) < 2 or len(processed(memory)) < 2:  # noqa: ASYNC110 - polling the workers' work
                await anyio.sleep(0.05)
        app.stop()
    print_tree(list(memory.get_finished_spans()))


def processed(memory: InMemorySpanExporter) -> list[ReadableSpan]:
    """The finished ``process`` spans (a process span ends once its message is settled)."""
    return [s for s in memory.get_finished_spans() if s.name.startswith("process ")]


if __name__ == "__main__":
    anyio.run(main)
