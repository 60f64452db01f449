"""Connecting the AWS way: endpoint variables, unreachable endpoints, regions, encryption options."""

from collections.abc import Callable

import pytest

import qfan

from .helpers import AppFactory


async def test_endpoint_from_service_specific_variable_wins(
    monkeypatch: pytest.MonkeyPatch, endpoint_url: str, unique_name: Callable[..., str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint_url)
    app = qfan.App("env")
    queue = app.queue(unique_name())
    async with app:
        await queue.send("via AWS_ENDPOINT_URL_SQS")
        [message] = await queue.receive(wait=5)
    assert message.body == "via AWS_ENDPOINT_URL_SQS"


async def test_unreachable_endpoint_is_a_transport_error(unique_name: Callable[..., str]) -> None:
    app = qfan.App(
        "down",
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        retry=qfan.RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01),
    )
    app.queue(unique_name())
    with pytest.raises(qfan.TransportError) as caught:
        async with app:
            pass
    assert caught.value.transient


async def test_missing_region_is_a_config_error(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(qfan.ConfigError, match="region"):
        async with qfan.App("no-region", endpoint_url=endpoint_url):
            pass


async def test_encryption_options(make_app: AppFactory, unique_name: Callable[..., str]) -> None:
    app = make_app()
    managed = app.queue(unique_name(), encryption=qfan.SqsManagedEncryption())
    kms = app.queue(unique_name(), encryption=qfan.KmsEncryption("alias/aws/sqs", data_key_reuse_seconds=600))
    async with app:
        assert managed.info.attributes["SqsManagedSseEnabled"] == "true"
        assert kms.info.attributes["KmsMasterKeyId"] == "alias/aws/sqs"
        assert kms.info.attributes["KmsDataKeyReusePeriodSeconds"] == "600"


async def test_app_cannot_be_entered_twice(make_app: AppFactory) -> None:
    app = make_app()
    async with app:
        with pytest.raises(qfan.QfanError, match="already open"):
            await app.__aenter__()
