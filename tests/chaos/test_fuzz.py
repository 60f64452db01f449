"""Garbage on the queue: hypothesis-generated bodies and attributes, mixed with valid messages.

Random text and bytes, broken JSON, wrong types for the handler's annotation, forged S3 pointers, forged SNS
envelopes and huge attribute values go into a queue (sent by a plain AWS client, as any producer could) that
a worker consumes. The worker must never die, must process every valid message around them, and must put
each bad one in the dead-letter queue with a reason.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections import Counter
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qfan

from ..support.aws import raw_client
from ..support.emulators import Emulator
from .report import SIZES, Row, Sizes, record

pytestmark = pytest.mark.chaos

POINTER = "software.amazon.payloadoffloading.PayloadS3Pointer"
FAST = qfan.Backoff(initial=0, maximum=1, jitter=0)
TOTALS: Counter[str] = Counter()
ERRORS: Counter[str] = Counter()  # "kind: dead-letter-error" -> count


class Item(msgspec.Struct):
    id: int


# SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in bodies and attributes.
sqs_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF) | st.sampled_from('\t\n\r{}[]":,'), min_size=1
)
not_an_int = st.one_of(
    st.text(max_size=20),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(), st.text()),
)
bad_json = st.builds(
    lambda s, cut: s[: max(1, len(s) - cut)], st.just('{"id": 12345, "x": [1, 2]}'), st.integers(1, 20)
)


def envelope(message: str, extra: dict[str, Any]) -> str:
    base = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": "arn:aws:sns:x:1:t"}
    return json.dumps({**base, "Message": message, **extra})


Case = tuple[str, str, dict[str, Any]]  # (kind, body, extra attributes in the boto shape)

bad_cases: st.SearchStrategy[Case] = st.one_of(
    st.tuples(st.just("random text"), sqs_text, st.just({})),
    st.tuples(
        st.just("random bytes"),
        st.binary(min_size=1, max_size=200).map(lambda b: base64.b64encode(b).decode()),
        st.sampled_from(
            [{}, {"content-type": {"DataType": "String", "StringValue": "application/msgpack;base64"}}]
        ),
    ),
    st.tuples(st.just("broken JSON"), bad_json, st.just({})),
    st.tuples(st.just("wrong type"), not_an_int.map(lambda v: json.dumps({"id": v})), st.just({})),
    st.tuples(st.just("wrong type"), st.sampled_from(["[]", "{}", "3", '"id"', "null"]), st.just({})),
    st.tuples(
        st.just("forged pointer"),
        st.tuples(st.sampled_from([POINTER, "x.Pointer"]), st.text(max_size=30), st.text(max_size=30)).map(
            lambda t: json.dumps([t[0], {"s3BucketName": t[1], "s3Key": t[2]}])
        ),
        st.integers(0, 10**9).map(
            lambda n: {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(n)}}
        ),
    ),
    st.tuples(
        st.just("forged SNS envelope"),
        st.tuples(
            sqs_text, st.sampled_from([{}, {"MessageAttributes": {"a": {"Type": "Binary", "Value": "%%"}}}])
        ).map(lambda t: envelope(t[0], t[1])),
        st.just({}),
    ),
    st.tuples(
        st.just("huge attribute"),
        bad_json,
        st.integers(50_000, 200_000).map(lambda n: {"big": {"DataType": "String", "StringValue": "b" * n}}),
    ),
)
# A valid message may carry a huge attribute too: it must still be processed.
huge_or_none = st.one_of(
    st.just({}),
    st.integers(50_000, 200_000).map(lambda n: {"big": {"DataType": "String", "StringValue": "v" * n}}),
)


def decodes(body: str) -> bool:
    try:
        msgspec.json.decode(body, type=Item)
    except msgspec.DecodeError:
        return False
    return True


async def scenario(endpoint_url: str, bad: list[Case], valid_extras: list[dict[str, Any]]) -> None:
    token = uuid.uuid4().hex[:10]
    app = qfan.App("chaos-fuzz", endpoint_url=endpoint_url, region="us-east-1")
    policy = qfan.Offload(f"chaos-fuzz-{token}")
    dead = app.queue(f"fuzz-{token}-dlq")
    queue = app.queue(
        f"fuzz-{token}", Item, offload=policy, dead_letter=dead, max_receives=2, visibility_timeout=5
    )
    processed: Counter[int] = Counter()

    @app.worker(queue, name="fuzz", backoff=FAST, concurrency=10)
    async def handle(item: Item) -> None:
        processed[item.id] += 1

    entries: list[tuple[str, str, dict[str, Any]]] = []  # (tag, body, attributes)
    for index, (_, body, attributes) in enumerate(bad):
        entries.append((f"bad-{index}", body, attributes))
    for index, attributes in enumerate(valid_extras):
        entries.append((f"ok-{index}", json.dumps({"id": index}), attributes))
    random.Random(len(entries)).shuffle(entries)  # interleave the valid with the bad
    async with app, raw_client("sqs", endpoint_url) as sqs:
        url = (await sqs.get_queue_url(QueueName=queue.name))["QueueUrl"]
        for tag, body, attributes in entries:
            tagged = {**attributes, "fuzz-tag": {"DataType": "String", "StringValue": tag}}
            await sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=tagged)
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            stats = app.stats()["fuzz"]
            with anyio.fail_after(120):
                while stats.succeeded + stats.dead_lettered < len(entries):  # noqa: ASYNC110 - counters
                    await anyio.sleep(0.05)
            app.stop()
        dead_url = (await sqs.get_queue_url(QueueName=dead.name))["QueueUrl"]
        reasons: dict[str, str] = {}
        errors: dict[str, str] = {}
        while len(reasons) < len(bad):
            answer = await sqs.receive_message(
                QueueUrl=dead_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
            )
            if not answer.get("Messages"):
                break
            for message in answer["Messages"]:
                attributes = message.get("MessageAttributes", {})
                tag = attributes["fuzz-tag"]["StringValue"]
                reasons[tag] = attributes["dead-letter-reason"]["StringValue"]
                errors[tag] = attributes["dead-letter-error"]["StringValue"]
    for tag, error in errors.items():
        ERRORS[f"{bad[int(tag.removeprefix('bad-'))][0]}: {error}"] += 1
    TOTALS["messages"] += len(entries)
    TOTALS["bad"] += len(bad)
    TOTALS["dead_lettered"] += stats.dead_lettered
    TOTALS["duplicated"] += sum(n - 1 for n in processed.values())
    TOTALS["lost"] += len(set(range(len(valid_extras))) - set(processed))
    assert set(processed) == set(range(len(valid_extras)))
    assert set(reasons) == {f"bad-{i}" for i in range(len(bad))}
    assert all(reasons.values())


@settings(
    max_examples=SIZES["full"].fuzz_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    database=None,
)
@given(
    bad=st.lists(bad_cases.filter(lambda case: not decodes(case[1])), min_size=1, max_size=12),
    valid=st.lists(huge_or_none, min_size=1, max_size=8),
)
def test_garbage_is_dead_lettered_with_a_reason_and_the_rest_processed(
    chaos_server: Emulator, sizes: Sizes, bad: list[Case], valid: list[dict[str, Any]]
) -> None:
    if TOTALS["examples"] >= sizes.fuzz_examples:
        return  # the ci size runs fewer examples than the full one hypothesis is configured for
    TOTALS["examples"] += 1
    started = time.monotonic()
    try:
        anyio.run(scenario, chaos_server.endpoint_url, bad, valid)
    finally:
        TOTALS["seconds"] += time.monotonic() - started
        for kind, _, _ in bad:
            TOTALS[f"kind: {kind}"] += 1


@pytest.fixture(scope="module", autouse=True)
def fuzz_row() -> Any:
    """One summary row for all the fuzz examples of the session."""
    TOTALS.clear()
    ERRORS.clear()
    yield
    if TOTALS["examples"]:
        record(
            Row(
                f"fuzz: {TOTALS['examples']} hypothesis examples",
                TOTALS["messages"],
                TOTALS["bad"],
                TOTALS["lost"],
                TOTALS["duplicated"],
                TOTALS["dead_lettered"],
                TOTALS["seconds"],
                {
                    "bad_by_kind": {k: v for k, v in TOTALS.items() if k.startswith("kind: ")},
                    "dead_letter_errors": dict(ERRORS),
                },
            )
        )
