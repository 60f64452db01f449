"""OpenTelemetry spans and metrics over real emulators: one trace from sender to handler through queues,
SNS fanout (raw and enveloped), S3 offload, dead-lettering and request/response; handler errors recorded;
garbage trace context never fails a message.

Each test gives its apps a ``qfan.Telemetry`` bound to SDK providers of its own (in-memory exporter and
reader), so nothing global is set and the rest of the suite runs without telemetry. Installing providers
globally (what applications do) is covered by the ``qfan run --metrics-port`` test and the example, in
their own processes.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import qfan

from .helpers import AppFactory
from .support.aws import raw_client
from .support.proxy import Proxy
from .test_workers import run_until

FAST = qfan.Backoff(initial=0, maximum=1, jitter=0)


@dataclass
class Otel:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def telemetry(self, **options: Any) -> qfan.Telemetry:
        options.setdefault("backlog_interval", None)
        return qfan.Telemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = self.spans.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.finished(name)
        return span

    def counts(self, metric: str, **labels: str) -> int:
        """The sum of ``metric``'s data points whose attributes include ``labels``."""
        data = self.metrics.get_metrics_data()
        total = 0
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for each in scope.metrics:
                    if each.name == metric:
                        for point in each.data.data_points:
                            attributes = dict(point.attributes or {})
                            if all(attributes.get(k) == v for k, v in labels.items()):
                                total += int(getattr(point, "value", getattr(point, "count", 0)))
        return total


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(spans, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def in_trace(spans: Sequence[ReadableSpan], trace_id: int) -> bool:
    return all(span.context is not None and span.context.trace_id == trace_id for span in spans)


async def test_queue_send_to_worker_is_one_trace(
    make_app: AppFactory, unique_name: Callable[..., str], otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    queue = app.queue(unique_name("orders"), str)
    seen: list[int] = []

    @app.worker(queue, name="orders")
    async def handle(body: str) -> None:
        from opentelemetry import trace

        seen.append(trace.get_current_span().get_span_context().span_id)

    tracer = otel.tracer_provider.get_tracer("test")
    async with app:
        with tracer.start_as_current_span("checkout") as root:
            await queue.send("pen")
        await run_until(app, lambda: otel.finished(f"process {queue.name}") != [])
    trace_id = root.get_span_context().trace_id
    create, process = otel.one(f"create {queue.name}"), otel.one(f"process {queue.name}")
    receive = otel.finished(f"receive {queue.name}")[0]
    assert in_trace([create, process, receive], trace_id)
    assert parent_id(create) == root.get_span_context().span_id
    assert create.kind is SpanKind.PRODUCER
    assert process.kind is SpanKind.CONSUMER
    assert create.context is not None
    assert parent_id(process) == create.context.span_id
    assert any(link.context.span_id == create.context.span_id for link in receive.links)
    assert process.context is not None
    assert seen == [process.context.span_id]
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == "aws_sqs"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.destination.name"] == queue.name
    assert "messaging.message.id" in process.attributes
    [settle] = [e for e in process.events if e.name == "qfan.settle"]
    assert settle.attributes == {"qfan.outcome": "acked"}
    assert process.status.status_code is StatusCode.UNSET
    assert otel.counts("qfan.messages.sent", **{"messaging.destination.name": queue.name}) == 1
    assert otel.counts("qfan.messages.received", **{"qfan.worker": "orders"}) == 1
    assert otel.counts("qfan.messages.settled", **{"qfan.outcome": "acked", "qfan.worker": "orders"}) == 1
    assert otel.counts("qfan.handler.duration", **{"messaging.destination.name": queue.name}) == 1


async def test_topic_fanout_raw_and_envelope_both_continue_the_trace(
    make_app: AppFactory, unique_name: Callable[..., str], otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    topic = app.topic(unique_name("events"), str)
    raw, enveloped = app.queue(unique_name("raw"), str), app.queue(unique_name("env"), str)
    app.subscribe(topic, raw)
    app.subscribe(topic, enveloped, raw=False)
    handled: list[str] = []

    @app.worker(raw, name="raw")
    async def on_raw(body: str) -> None:
        handled.append(f"raw:{body}")

    @app.worker(enveloped, name="enveloped")
    async def on_enveloped(body: str, message: qfan.Message[str]) -> None:
        assert message.sns is not None  # really delivered in SNS's envelope
        handled.append(f"env:{body}")

    tracer = otel.tracer_provider.get_tracer("test")
    async with app:
        with tracer.start_as_current_span("upload") as root:
            await topic.publish("a.jpg")
        await run_until(app, lambda: len([s for s in otel.finished() if s.name.startswith("process")]) == 2)
    create = otel.one(f"create {topic.name}")
    assert create.attributes is not None
    assert create.attributes["messaging.system"] == "aws_sns"
    assert create.attributes["messaging.operation.name"] == "publish"
    processes = [otel.one(f"process {raw.name}"), otel.one(f"process {enveloped.name}")]
    assert in_trace([create, *processes], root.get_span_context().trace_id)
    assert create.context is not None
    assert [parent_id(p) for p in processes] == [create.context.span_id] * 2


async def test_request_reply_continues_the_trace(
    make_app: AppFactory, unique_name: Callable[..., str], otel: Otel
) -> None:
    server, client = make_app(hooks=[otel.telemetry()]), make_app(hooks=[otel.telemetry()])
    name = unique_name("resize")
    requests = server.queue(name, str)

    @server.responder(requests, name="resize")
    async def resize(key: str) -> str:
        return f"{key}@128"

    tracer = otel.tracer_provider.get_tracer("test")
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        with tracer.start_as_current_span("web request") as root:
            reply = await client.request(client.queue(name, str), "a.jpg", response_type=str, timeout=60)
        server.stop()
    assert reply == "a.jpg@128"
    create_request, process = otel.one(f"create {name}"), otel.one(f"process {name}")
    [create_reply] = [s for s in otel.finished() if s.name.startswith("create qfan-reply-")]
    [receive_reply] = [s for s in otel.finished() if s.name.startswith("receive qfan-reply-")]
    assert in_trace([create_request, process, create_reply, receive_reply], root.get_span_context().trace_id)
    assert create_request.context is not None
    assert process.context is not None
    assert create_reply.context is not None
    assert parent_id(process) == create_request.context.span_id
    assert parent_id(create_reply) == process.context.span_id  # the reply is sent from the handler's span
    assert parent_id(receive_reply) == create_reply.context.span_id  # and the requester continues it
    assert process.attributes is not None
    assert "messaging.message.conversation_id" in process.attributes
    assert otel.counts("qfan.request.duration", **{"messaging.destination.name": name}) == 1


async def test_handler_exception_is_recorded_and_settles_are_events(
    make_app: AppFactory, unique_name: Callable[..., str], otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    dead = app.queue(unique_name("dlq"), str)
    queue = app.queue(unique_name(), str, dead_letter=dead, max_receives=5, visibility_timeout=5)
    attempts: list[str] = []

    @app.worker(queue, name="flaky", backoff=FAST)
    async def handle(body: str) -> None:
        attempts.append(body)
        if body == "reject":
            raise qfan.Reject("out of stock")
        if len(attempts) == 1:
            raise ValueError("first try fails")

    @app.worker(dead, name="dead")
    async def on_dead(body: str) -> None:
        attempts.append(f"dead:{body}")

    tracer = otel.tracer_provider.get_tracer("test")
    async with app:
        await queue.send("ok")
        await run_until(app, lambda: attempts == ["ok", "ok"])
        with tracer.start_as_current_span("order") as root:
            await queue.send("reject")
        await run_until(app, lambda: "dead:reject" in attempts)
    failed, succeeded, rejected = otel.finished(f"process {queue.name}")
    assert failed.status.status_code is StatusCode.ERROR
    [exception] = [e for e in failed.events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ValueError"
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "ValueError"
    settle = next(e for e in failed.events if e.name == "qfan.settle")
    assert settle.attributes is not None
    assert settle.attributes["qfan.outcome"] == "retried"
    assert succeeded.status.status_code is StatusCode.UNSET
    settle = next(e for e in rejected.events if e.name == "qfan.settle")
    assert settle.attributes is not None
    assert settle.attributes["qfan.outcome"] == "dead_lettered"
    assert settle.attributes["qfan.reason"] == "rejected: out of stock"
    # The dead-letter copy keeps the producer's context: its handler continues the same trace.
    dead_process = otel.one(f"process {dead.name}")
    assert in_trace([rejected, dead_process], root.get_span_context().trace_id)
    assert parent_id(dead_process) == parent_id(rejected)
    assert otel.counts("qfan.messages.settled", **{"qfan.outcome": "retried"}) == 1
    assert otel.counts("qfan.messages.settled", **{"qfan.outcome": "dead_lettered"}) == 1


async def test_garbage_trace_context_is_processed_once_in_its_own_span(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str, otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    queue = app.queue(unique_name(), str, visibility_timeout=5)
    handled: list[str] = []

    @app.worker(queue, name="tolerant")
    async def handle(body: str) -> None:
        handled.append(body)

    garbage = {
        "traceparent": {"DataType": "String", "StringValue": "00-not-a-trace-at-all-zz"},
        "tracestate": {"DataType": "String", "StringValue": "=,=;;"},
    }
    async with app, raw_client("sqs", endpoint_url) as sqs:
        await sqs.send_message(QueueUrl=queue.info.url, MessageBody="garbage", MessageAttributes=garbage)
        await sqs.send_message(  # another producer's binary "traceparent"
            QueueUrl=queue.info.url,
            MessageBody="binary",
            MessageAttributes={"traceparent": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}},
        )
        await run_until(app, lambda: len(handled) == 2)
        await anyio.sleep(1)  # anything delivered twice would show now
        assert sorted(handled) == ["binary", "garbage"]
        assert (await queue.attributes())["ApproximateNumberOfMessages"] == "0"
    processes = otel.finished(f"process {queue.name}")
    assert len(processes) == 2
    for span in processes:
        assert span.parent is None  # a trace of its own
        settle = next(e for e in span.events if e.name == "qfan.settle")
        assert settle.attributes == {"qfan.outcome": "acked"}
    assert processes[0].context is not None
    assert processes[1].context is not None
    assert processes[0].context.trace_id != processes[1].context.trace_id


async def test_aws_trace_header_is_read(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str, otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    queue = app.queue(unique_name(), str)
    handled: list[str] = []

    @app.worker(queue, name="xray")
    async def handle(body: str) -> None:
        handled.append(body)

    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    async with app, raw_client("sqs", endpoint_url) as sqs:
        await sqs.send_message(
            QueueUrl=queue.info.url,
            MessageBody="traced by x-ray",
            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": header}},
        )
        await run_until(app, lambda: handled == ["traced by x-ray"])
    process = otel.one(f"process {queue.name}")
    assert process.context is not None
    assert process.parent is not None
    assert process.context.trace_id == 0x5759E988BD862E3FE1BE46A994272793
    assert process.parent.span_id == 0x53995C3F42CD8AD8


async def test_offloaded_message_continues_the_trace(
    make_app: AppFactory, unique_name: Callable[..., str], otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    policy = qfan.Offload(unique_name("otel-bucket"), always=True)
    queue = app.queue(unique_name(), str, offload=policy)
    handled: list[int] = []

    @app.worker(queue, name="big")
    async def handle(body: str) -> None:
        handled.append(len(body))

    tracer = otel.tracer_provider.get_tracer("test")
    async with app:
        with tracer.start_as_current_span("scan") as root:
            await queue.send("x" * 300_000)
        await run_until(app, lambda: handled == [300_000])
    process, create = otel.one(f"process {queue.name}"), otel.one(f"create {queue.name}")
    put, get = otel.one("S3.PutObject"), otel.one("S3.GetObject")
    assert in_trace([process, put, get], root.get_span_context().trace_id)
    assert create.context is not None
    assert [parent_id(s) for s in (put, get, process)] == [create.context.span_id] * 3
    assert put.attributes is not None
    assert put.attributes["aws.s3.bucket"] == policy.bucket
    assert put.end_time is not None
    assert put.start_time is not None
    assert put.end_time > put.start_time
    for operation in ("PutObject", "GetObject"):
        assert otel.counts("qfan.offload.bytes", **{"rpc.method": operation}) == 300_000


async def test_no_sdk_means_no_hooks(make_app: AppFactory) -> None:
    from opentelemetry import metrics, trace

    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"  # nothing set globally
    assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    app = make_app()
    async with app:
        assert not app.connection.hooks  # the pipelines skip hooks entirely


async def test_aws_trace_header_propagation_spends_no_attribute_slot(
    make_app: AppFactory, unique_name: Callable[..., str], endpoint_url: str, proxy: Proxy, otel: Otel
) -> None:
    """``propagation="aws"``: the context goes as SQS's AWSTraceHeader system attribute, read back on receive
    and kept by the dead-letter copy. (moto and MiniStack keep the system attribute of SendMessage but drop
    it from SendMessageBatch entries, which AWS keeps: what qfan sends is checked on the wire.)"""
    app = make_app(endpoint_url=proxy.endpoint_url, hooks=[otel.telemetry(propagation="aws")])
    dead = app.queue(unique_name("dlq"), str)
    queue = app.queue(unique_name(), str, dead_letter=dead, max_receives=5)
    seen: list[str] = []

    @app.worker(queue, name="rejecting")
    async def handle(body: str) -> None:
        seen.append(body)
        raise qfan.Reject("to the dead-letter queue")

    nine = {f"a{i}": str(i) for i in range(9)}  # every slot a sender may use
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    tracer = otel.tracer_provider.get_tracer("test")
    async with app, raw_client("sqs", endpoint_url) as sqs:
        proxy.clear()
        with tracer.start_as_current_span("full attributes") as root:
            await queue.send("order", attributes=nine)
        [sent] = [e for call in proxy.calls("SendMessageBatch") for e in json.loads(call.body)["Entries"]]
        assert set(sent["MessageAttributes"]) == {*nine, "content-type"}  # no traceparent: no slot spent
        trace_id = f"{root.get_span_context().trace_id:032x}"
        create = otel.one(f"create {queue.name}")
        assert create.context is not None
        assert sent["MessageSystemAttributes"] == {
            "AWSTraceHeader": {
                "DataType": "String",
                "StringValue": f"Root=1-{trace_id[:8]}-{trace_id[8:]};"
                f"Parent={create.context.span_id:016x};Sampled=1",
            }
        }
        proxy.clear()
        await sqs.send_message(  # a producer traced by X-Ray
            QueueUrl=queue.info.url,
            MessageBody="x-ray",
            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": header}},
        )
        await run_until(app, lambda: "x-ray" in seen and len(otel.finished(f"process {queue.name}")) == 2)
    copies = [e for call in proxy.calls("SendMessageBatch") for e in json.loads(call.body)["Entries"]]
    [copy] = [e for e in copies if e["MessageBody"] == "x-ray"]
    assert copy["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"] == header  # the DLQ copy keeps it
    [x_ray] = [
        s
        for s in otel.finished(f"process {queue.name}")
        if s.context and s.parent and s.parent.span_id == 0x53995C3F42CD8AD8
    ]
    assert x_ray.context is not None
    assert x_ray.context.trace_id == 0x5759E988BD862E3FE1BE46A994272793


async def test_batch_handler_span_links_every_message(
    make_app: AppFactory, unique_name: Callable[..., str], otel: Otel
) -> None:
    app = make_app(hooks=[otel.telemetry()])
    queue = app.queue(unique_name("batched"), str, visibility_timeout=10)
    batches: list[list[str]] = []

    @app.worker(queue, name="batched", batch_size=10, receive_wait=1)
    async def handle(messages: list[qfan.Message[str]]) -> list[qfan.Message[str]]:
        batches.append([m.body for m in messages])
        return []

    tracer = otel.tracer_provider.get_tracer("test")
    async with app:
        with tracer.start_as_current_span("orders") as root:
            await queue.send_many(["a", "b", "c"])
        await run_until(app, lambda: sum(len(b) for b in batches) == 3)
    creates = otel.finished(f"create {queue.name}")
    assert len(creates) == 3
    created = {s.context.span_id for s in creates if s.context is not None}
    processes = otel.finished(f"process {queue.name}")
    assert len(processes) == len(batches)
    linked = {link.context.span_id for span in processes for link in span.links}
    assert linked == created
    for span in processes:
        assert span.parent is None  # many parents: links, not a child
        assert span.attributes is not None
        assert span.attributes["messaging.batch.message_count"] == len(span.links)
        assert all(link.context.trace_id == root.get_span_context().trace_id for link in span.links)
    settles = otel.finished(f"settle {queue.name}")
    assert sorted(parent_id(s) for s in settles) == sorted(created)  # each message's decision, in its trace
