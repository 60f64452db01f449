"""Small helpers shared by the test modules."""

from collections.abc import Callable
from typing import Any, Protocol

import anyio

import qfan


class AppFactory(Protocol):
    """Builds an App pointed at the session's emulator (or at another endpoint, e.g. a proxy)."""

    def __call__(self, *, endpoint_url: str | None = ..., **kwargs: Any) -> qfan.App: ...


def one_transport_app(endpoint_url: str, **kwargs: Any) -> qfan.App:
    """An app on the default (fast) transport, for behaviour above the transport that need not run twice."""
    kwargs.setdefault("retry", qfan.RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.2))
    return qfan.App("tests", endpoint_url=endpoint_url, region="us-east-1", transport="fast", **kwargs)


async def wait_for(done: Callable[[], bool], limit: float = 30) -> None:
    """Poll ``done()`` (over what handlers record) until it holds; ``TimeoutError`` after ``limit`` s."""
    with anyio.fail_after(limit):
        while not done():  # noqa: ASYNC110 - polling a plain predicate the handlers update
            await anyio.sleep(0.05)
