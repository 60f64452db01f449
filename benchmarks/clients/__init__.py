"""The clients compared. Each module defines one function per scenario it can run, named after the
scenario (``publish(job) -> Outcome``), and ``UNAVAILABLE`` with the reason for each scenario it cannot.

Adding a scenario to a client is adding one function to its module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..common import Job, NotAvailable, Outcome

CLIENTS: dict[str, str] = {
    "qfan": "qfan (this library): send_many / worker, transport='fast' (the lean SQS data path)",
    "qfan-botocore": "qfan: the same calls with transport='botocore' (every SQS call through aiobotocore)",
    "qfan-send": "qfan: one send() per message from concurrent tasks, coalesced",
    "qfan-run-1p": "qfan run app:worker --processes 1 (the CLI, as deployed)",
    "qfan-run-2p": "qfan run app:worker --processes 2 (two worker processes, one supervisor)",
    "qfan-run-uvloop": "qfan run app:worker --processes 1 on uvloop (qfan[speed])",
    "qfan-otel": "qfan: the qfan row with an OpenTelemetry SDK installed (traces, metrics; no-op exporters)",
    "boto3-naive": "boto3, one call per message",
    "boto3-batched": "boto3, batches of 10, one thread",
    "aiobotocore": "aiobotocore, batches of 10, concurrent tasks",
    "sqs-workers": "sqs-workers (boto3): add_batch / process_batch",
    "taskiq": "taskiq + taskiq-aio-sqs, batching on",
    "extended-client": "amazon-sqs-extended-client (boto3 + S3)",
}

_MODULES = {
    "qfan": "qfan_client",
    "qfan-botocore": "qfan_client",
    "qfan-send": "qfan_client",
    "qfan-run-1p": "qfan_run_client",
    "qfan-run-2p": "qfan_run_client",
    "qfan-run-uvloop": "qfan_run_client",
    "qfan-otel": "qfan_client",
    "boto3-naive": "boto3_client",
    "boto3-batched": "boto3_client",
    "aiobotocore": "aiobotocore_client",
    "sqs-workers": "sqs_workers_client",
    "taskiq": "taskiq_client",
    "extended-client": "extended_client",
}


def scenario_function(client: str, scenario: str) -> Callable[[Job], Outcome]:
    """The function that runs ``scenario`` for ``client``; raises NotAvailable (with why) if there is none."""
    module = importlib.import_module(f"{__name__}.{_MODULES[client]}")
    variant = f"{scenario}_{client.replace('-', '_')}"  # a client-specific function or reason wins
    reasons: dict[str, str] = getattr(module, "UNAVAILABLE", {})
    function = getattr(module, variant, None)
    if function is None and variant in reasons:
        raise NotAvailable(reasons[variant])
    function = function or getattr(module, scenario, None)
    if function is None:
        raise NotAvailable(reasons.get(scenario, "not implemented"))
    return function  # type: ignore[no-any-return]
