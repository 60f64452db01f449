"""The running event loop when it is asyncio's: the few hot paths that use asyncio directly ask here.

qfan runs on anyio. Where anyio's portable primitives cost too much per message (a task per queued delete
batch, an Event per idle runner's wait), asyncio's own are used when the loop is asyncio's, and the portable
path is taken on any other (trio). ``asyncio`` itself is imported with the first call, not with
``import qfan`` (Lambda cold starts).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

_tasks: set[asyncio.Task[Any]] = set()  # strong references to running background tasks


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop; ``None`` outside one (trio)."""
    import asyncio  # loaded by the event loop already

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def spawn(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` in a task of its own on the running asyncio loop, referenced until it ends (its caller
    keeps track of completion through callbacks, not through the task)."""
    loop = asyncio_loop()
    if loop is None:
        work.close()
        raise RuntimeError("spawn needs a running asyncio loop")
    task = loop.create_task(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
