"""Fixtures: the suite runs against every emulator (real server processes), over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import qfan

from .support.emulators import EMULATORS, Emulator, running_emulator
from .support.proxy import Proxy, running_proxy


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--emulator",
        action="append",
        choices=EMULATORS,
        help="run against this emulator only (repeatable; default: all of them)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "emulator_name" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--emulator") or list(EMULATORS)
        metafunc.parametrize("emulator_name", chosen, scope="session")


@pytest.fixture(scope="session")
def emulator(emulator_name: str) -> Iterator[Emulator]:
    with running_emulator(emulator_name) as running:  # type: ignore[arg-type]
        yield running


@pytest.fixture(autouse=True)
def _hermetic_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up real credentials, profiles or endpoints from the machine."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def endpoint_url(emulator: Emulator) -> str:
    return emulator.endpoint_url


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[Proxy]:
    with running_proxy(emulator.endpoint_url) as running:
        yield running


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """Queue names unique within the session (the emulator is shared by all tests)."""

    def make(prefix: str = "q", *, fifo: bool = False) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        return f"{name}.fifo" if fifo else name

    return make


@pytest.fixture
def make_app(endpoint_url: str) -> Callable[..., qfan.App]:
    """Apps pointed at the emulator; fast retries so that fault tests don't wait long."""

    def make(*, endpoint_url: str = endpoint_url, **kwargs: Any) -> qfan.App:
        kwargs.setdefault("retry", qfan.RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.2))
        return qfan.App("tests", endpoint_url=endpoint_url, region="us-east-1", **kwargs)

    return make
