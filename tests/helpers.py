"""Small helpers shared by the test modules."""

from typing import Any, Protocol

import qfan


class AppFactory(Protocol):
    """Builds an App pointed at the session's emulator (or at another endpoint, e.g. a proxy)."""

    def __call__(self, *, endpoint_url: str | None = ..., **kwargs: Any) -> qfan.App: ...


def one_transport_app(endpoint_url: str, **kwargs: Any) -> qfan.App:
    """An app on the default (fast) transport, for behaviour above the transport that need not run twice."""
    kwargs.setdefault("retry", qfan.RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.2))
    return qfan.App("tests", endpoint_url=endpoint_url, region="us-east-1", transport="fast", **kwargs)
