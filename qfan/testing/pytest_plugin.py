"""pytest fixtures to test code built on qfan without an emulator: ``memory_transport``, ``qfan_harness``.

Opt-in, so that test runs which do not use it never import qfan: load it with ``pytest_plugins =
["qfan.testing.pytest_plugin"]`` in a root ``conftest.py``, or ``-p qfan.testing.pytest_plugin``.

- ``memory_transport``: a fresh :class:`~qfan.testing.MemoryTransport` per test (a sync fixture).
- ``qfan_harness``: a factory, ``harness = await qfan_harness(app)``, that starts a
  :class:`~qfan.testing.Harness` on ``app`` (its workers running) and stops it when the test ends.

``qfan_harness`` is an async fixture for asyncio. With pytest-asyncio in ``auto`` mode any ``async def`` test
can use it; in ``strict`` mode (its default) mark the test ``@pytest.mark.asyncio``. The harness itself runs
in a task of its own, so that it is entered and left in one task whichever tasks pytest-asyncio runs the
test and the fixture's teardown in. Under anyio's pytest plugin (``@pytest.mark.anyio``), or on trio, use
``async with qfan.testing.Harness(app) as harness:`` in the test instead.

Example::

    @pytest.mark.asyncio
    async def test_orders(memory_transport, qfan_harness):
        app = qfan.App("shop", transport=memory_transport)
        orders = app.queue("orders")

        @app.worker(orders)
        async def handle(order: dict) -> None: ...

        harness = await qfan_harness(app)
        assert (await harness.deliver(orders, {"id": 1})).acked

The module itself imports only pytest (and pytest-asyncio when installed), and the harness loads when a
fixture first runs; being part of the ``qfan`` package, though, loading it imports ``qfan`` itself. It
defines no hooks, and no fixture named like those of qfan's own test suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from .. import App
    from . import Harness, MemoryTransport

F = TypeVar("F", bound=Callable[..., Any])

_fixture: Callable[[Any], Any]
try:
    import pytest_asyncio
except ImportError:  # anyio's plugin (or none) runs it, if anything does
    _fixture = pytest.fixture
else:
    _fixture = pytest_asyncio.fixture


def _async_fixture(function: F) -> F:
    """An async fixture: pytest-asyncio's when it is installed (so that strict mode runs it too)."""
    return cast(F, _fixture(function))


class HarnessFactory:
    """What the ``qfan_harness`` fixture gives: call it to start a harness; each stops at teardown."""

    def __init__(self) -> None:
        self._owners: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    async def __call__(
        self, app: App, *, workers: Iterable[str] | None = None, drain_timeout: float = 5.0
    ) -> Harness:
        """Start a :class:`~qfan.testing.Harness` on ``app`` (see its arguments) and return it, running."""
        from ._harness import Harness

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "qfan_harness needs asyncio; elsewhere use 'async with qfan.testing.Harness(app) as harness:'"
            ) from None
        harness = Harness(app, workers=workers, drain_timeout=drain_timeout)
        entered, stop = asyncio.Event(), asyncio.Event()

        async def own() -> None:
            try:
                async with harness:
                    entered.set()
                    await stop.wait()
            finally:
                entered.set()

        task = loop.create_task(own(), name=f"qfan harness {app.name}")
        self._owners.append((task, stop))
        await entered.wait()
        if task.done():  # entering failed: say why here, not at teardown
            self._owners.remove((task, stop))
            await task
        return harness

    async def aclose(self) -> None:
        """Stop every harness this factory started (gracefully, in reverse order); raise what they raised."""
        failures: list[Exception] = []
        while self._owners:
            task, stop = self._owners.pop()
            stop.set()
            try:
                await task
            except Exception as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup("qfan harnesses failed", failures)


@pytest.fixture
def memory_transport() -> MemoryTransport:
    """A fresh in-memory SQS/SNS/S3 (:class:`~qfan.testing.MemoryTransport`) for this test alone."""
    from ._transport import MemoryTransport

    return MemoryTransport()


@_async_fixture
async def qfan_harness() -> AsyncIterator[HarnessFactory]:
    """``harness = await qfan_harness(app)``: a running :class:`~qfan.testing.Harness`, stopped at the end."""
    factory = HarnessFactory()
    try:
        yield factory
    finally:
        await factory.aclose()
