"""The contract suite: one set of plane-level tests run against the in-memory planes and the AWS planes.

Each test takes ``planes``, parametrized over the plane implementations: the memory planes of
``qfan.testing`` (once, touching no emulator), and ``AwsTransport("fast")`` and ``AwsTransport("botocore")``
on every chosen session emulator (``--emulator``; see ``tests/conftest.py``). Test ids read
``<emulator>-<transport>``; the memory run carries the first chosen emulator's name, which it never uses.

Where an emulator is known to deviate from AWS, the test skips that emulator with the reason (see
``deviates``); the memory planes follow AWS.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import pytest

from qfan._transport import (
    AwsTransport,
    ConnectionSettings,
    ObjectStore,
    ReceivedMessage,
    SnsPlane,
    SqsControlPlane,
    SqsDataPlane,
    Transport,
)
from qfan.testing import MemoryTransport

from ..conftest import chosen_emulators

PLANE_TRANSPORTS = ("memory", "fast", "botocore")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "plane_transport" in metafunc.fixturenames:
        metafunc.parametrize("plane_transport", PLANE_TRANSPORTS)


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


@pytest.fixture
async def planes(request: pytest.FixtureRequest, emulator_name: str, plane_transport: str) -> AsyncIterator[Planes]:
    transport: Transport
    endpoints: Mapping[str, str] = {}
    emulator: str | None = None
    if plane_transport == "memory":
        transport = MemoryTransport()
    else:
        endpoint_url: str = request.getfixturevalue("endpoint_url")
        endpoints = {"sqs": endpoint_url, "sns": endpoint_url, "s3": endpoint_url}
        transport = AwsTransport(plane_transport)  # type: ignore[arg-type]
        emulator = emulator_name
    settings = ConnectionSettings(region="us-east-1", endpoint_urls=endpoints)  # type: ignore[arg-type]
    async with AsyncExitStack() as stack:
        data, control = await stack.enter_async_context(transport.open_sqs(settings))
        sns = await stack.enter_async_context(transport.open_sns(settings))
        s3 = await stack.enter_async_context(transport.open_s3(settings))
        planes = Planes(plane_transport, emulator, data, control, sns, s3)
        yield planes
        # The emulators are shared by the whole session: leave them as small as they were.
        for url in planes.created:
            with anyio.move_on_after(5):
                try:
                    await control.delete_queue(url)
                except Exception:  # already deleted by the test
                    pass
