"""Handlers whose types are defined inside a function, in a module with postponed annotations (PEP 563).

``from __future__ import annotations`` makes every annotation a string, resolved later in the function's
module: a type defined inside the registering function is only in that function's local names.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

import qfan

from .helpers import AppFactory
from .test_workers import run_until


async def test_a_handler_type_defined_inside_a_function_is_resolved(
    make_app: AppFactory, unique_name: Callable[..., str]
) -> None:
    class Local(msgspec.Struct):
        n: int

    app = make_app()
    queue = app.queue(unique_name())
    seen: list[Local] = []

    @app.worker(queue, name="local-type")
    async def handle(item: Local, message: qfan.Message[Local]) -> None:
        seen.append(item)

    async with app:
        await queue.send_many([{"n": 1}, {"n": 2}])
        await run_until(app, lambda: len(seen) == 2)
    assert sorted(item.n for item in seen) == [1, 2]
    assert all(isinstance(item, Local) for item in seen)


def test_an_annotation_that_resolves_nowhere_is_still_a_clear_error() -> None:
    app = qfan.App("annotations")
    queue = app.queue("q")

    with pytest.raises(qfan.ConfigError, match="cannot resolve its type annotations: name 'Nowhere'"):

        @app.worker(queue)
        async def handle(item: Nowhere) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass
