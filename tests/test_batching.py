"""The coalescer that turns concurrent single-entry calls into batch calls: awaited and queued entries."""

from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest

from qfan import QfanError
from qfan._pipeline._batching import Coalescer


class Recorder:
    """A flush that records its batches and fails the entries named ``bad``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def flush(self, entries: Sequence[str]) -> list[str | QfanError]:
        self.batches.append(list(entries))
        await anyio.lowlevel.checkpoint()
        return [QfanError(f"no {e}") if e.startswith("bad") else e.upper() for e in entries]


async def test_queued_entries_share_batches_and_each_callback_gets_its_outcome() -> None:
    recorder = Recorder()
    coalescer: Coalescer[str, str] = Coalescer(recorder.flush, linger=0.01)
    outcomes: dict[str, object] = {}
    for name in ["a", "bad1", *[f"e{i}" for i in range(10)]]:
        coalescer.submit_soon(name, lambda outcome, name=name: outcomes.__setitem__(name, outcome))
    assert outcomes == {}  # nothing is sent before the batch is full or has lingered
    with anyio.fail_after(5):
        while len(outcomes) < 12:  # noqa: ASYNC110 - callbacks fill it
            await anyio.sleep(0.005)
    assert [len(batch) for batch in recorder.batches] == [10, 2]  # the full one at once, the rest after
    assert outcomes["a"] == "A"
    assert isinstance(outcomes["bad1"], QfanError)
    assert outcomes["e9"] == "E9"


async def test_awaited_and_queued_entries_join_one_batch_and_a_failing_callback_harms_no_other() -> None:
    recorder = Recorder()
    coalescer: Coalescer[str, str] = Coalescer(recorder.flush, linger=0.5)
    seen: list[object] = []

    def broken(_outcome: object) -> None:
        raise RuntimeError("a caller's bug")

    coalescer.submit_soon("first", broken)
    async with anyio.create_task_group() as tg:
        tg.start_soon(coalescer.submit, "second")
        await anyio.lowlevel.checkpoint()
        coalescer.submit_soon("third", seen.append)
        with pytest.raises(QfanError, match="no bad"):
            await coalescer.submit("bad")
    assert recorder.batches == [["first", "second", "third", "bad"]]
    assert seen == ["THIRD"]
