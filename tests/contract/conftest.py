"""The contract suite: one set of plane-level tests run against the in-memory planes and the AWS planes.

Each test takes ``planes``, parametrized over the plane implementations: the memory planes of
``qfan.testing`` (once, touching no emulator), and ``AwsTransport("fast")`` and ``AwsTransport("botocore")``
on every chosen session emulator (``--emulator``; see ``tests/conftest.py``). Test ids read
``<transport>-<emulator>`` (``fast-moto``); the memory run carries the first chosen emulator's name
(``memory-moto``), though it never touches that emulator.

Where an emulator is known to deviate from AWS, the test skips that emulator with the reason (see
``deviates``); the memory planes follow AWS.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import cast

import anyio
import pytest

import qfan
from qfan._transport import (
    AwsTransport,
    ConnectionSettings,
    ObjectStore,
    ReceivedMessage,
    SnsPlane,
    SqsControlPlane,
    SqsDataPlane,
    Transport,
    TransportName,
)
from qfan._transport._settings import Service
from qfan.testing import MemoryTransport

from ..conftest import chosen_emulators

PLANE_TRANSPORTS = ("memory", "fast", "botocore")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "plane_transport" in metafunc.fixturenames:
        metafunc.parametrize("plane_transport", PLANE_TRANSPORTS, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The memory planes run once: under the first chosen emulator only (they never start it)."""
    first = chosen_emulators(config)[0]
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        duplicate = params.get("plane_transport") == "memory" and params.get("emulator_name") != first
        (dropped if duplicate else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@dataclass
class Planes:
    """The planes under test, and which emulator (``None``: memory) serves them."""

    transport: str
    emulator: str | None
    data: SqsDataPlane
    control: SqsControlPlane
    sns: SnsPlane
    s3: ObjectStore
    created: list[str] = field(default_factory=list)

    def deviates(self, emulator: str, reason: str) -> None:
        """Skip the test on ``emulator``, which is known to deviate from AWS here."""
        if self.emulator == emulator:
            pytest.skip(f"{emulator} deviates from AWS: {reason}")

    async def queue(self, name: str, **attributes: str) -> str:
        """Create queue ``name`` with ``attributes``; returns its URL."""
        url = await self.control.create_queue(name, attributes, {})
        self.created.append(url)
        return url

    async def arn(self, url: str) -> str:
        return (await self.control.get_queue_attributes(url))["QueueArn"]

    async def collect(
        self, url: str, count: int, *, wait: float = 5.0, visibility_timeout: int | None = 30
    ) -> list[ReceivedMessage]:
        """Receive until ``count`` messages arrived or ``wait`` seconds passed (deliveries may lag)."""
        received: list[ReceivedMessage] = []
        with anyio.move_on_after(wait):
            while len(received) < count:
                received += await self.data.receive(
                    url,
                    max_messages=min(10, count - len(received)),
                    wait_seconds=1,
                    visibility_timeout=visibility_timeout,
                )
        return received


def bucket_name() -> str:
    return f"qfan-contract-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
async def aws_planes(
    request: pytest.FixtureRequest, emulator_name: str, plane_transport: str
) -> AsyncIterator[tuple[SqsDataPlane, SqsControlPlane, SnsPlane, ObjectStore] | None]:
    """The AWS planes on the session emulator, opened once per emulator and transport (``None``: memory).

    Credentials are explicit: the per-test ``aws_env`` fixture has not run yet when this one opens.
    """
    if plane_transport == "memory":
        yield None
        return
    endpoint_url = request.getfixturevalue("emulator").endpoint_url
    endpoints: Mapping[Service, str] = {"sqs": endpoint_url, "sns": endpoint_url, "s3": endpoint_url}
    transport: Transport = AwsTransport(cast(TransportName, plane_transport))
    settings = ConnectionSettings(
        region="us-east-1", endpoint_urls=endpoints, access_key_id="testing", secret_access_key="testing"
    )
    async with AsyncExitStack() as stack:
        data, control = await stack.enter_async_context(transport.open_sqs(settings))
        sns = await stack.enter_async_context(transport.open_sns(settings))
        s3 = await stack.enter_async_context(transport.open_s3(settings))
        yield data, control, sns, s3


@pytest.fixture
async def planes(
    aws_planes: tuple[SqsDataPlane, SqsControlPlane, SnsPlane, ObjectStore] | None,
    emulator_name: str,
    plane_transport: str,
) -> AsyncIterator[Planes]:
    """The planes under test: fresh memory planes, or the session's AWS planes on the emulator."""
    if aws_planes is None:
        memory = MemoryTransport()
        planes = Planes(plane_transport, None, memory.sqs, memory.sqs, memory.sns, memory.s3)
    else:
        planes = Planes(plane_transport, emulator_name, *aws_planes)
    yield planes
    # The emulators are shared by the whole session: leave them as small as they were.
    for url in planes.created:
        with anyio.move_on_after(5), contextlib.suppress(qfan.QfanError):  # the test may have deleted it
            await planes.control.delete_queue(url)
