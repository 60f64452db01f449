"""Small helpers shared by the test modules."""

from typing import Any, Protocol

import qfan


class AppFactory(Protocol):
    """Builds an App pointed at the session's emulator (or at another endpoint, e.g. a proxy)."""

    def __call__(self, *, endpoint_url: str | None = ..., **kwargs: Any) -> qfan.App: ...
