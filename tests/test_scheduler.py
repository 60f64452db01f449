"""The scheduler's decisions in isolation: which waiting level gets the next handler slot."""

import anyio
import anyio.lowlevel
import pytest

import qfan
from qfan._scheduler import Scheduler


async def grants(scheduler: Scheduler, waiting: dict[int, int], count: int) -> list[int]:
    """Queue ``waiting[level]`` tasks per level behind one busy slot; the first ``count`` levels served."""
    order: list[int] = []

    async def one(level: int) -> None:
        async with scheduler.turn(level):
            order.append(level)
            await anyio.lowlevel.checkpoint()

    # The only slot is busy while everyone queues up.
    async with anyio.create_task_group() as tg, scheduler.turn(0):
        for level, n in waiting.items():
            for _ in range(n):
                tg.start_soon(one, level)
        await anyio.sleep(0.01)
    return order[:count]


async def test_weighted_turns_follow_the_weights_smoothly() -> None:
    order = await grants(Scheduler(1, [8, 3, 1]), {0: 50, 1: 50, 2: 50}, 24)
    assert [order.count(level) for level in range(3)] == [16, 6, 2]
    assert [order[:12].count(level) for level in range(3)] == [8, 3, 1]  # exact in every round of 12
    longest = max(len(run) for run in "".join(map(str, order)).split("1") for run in run.split("2"))
    assert longest <= 3  # interleaved, not 8 highs in a row


async def test_a_level_without_backlog_leaves_its_share_to_the_others() -> None:
    scheduler = Scheduler(1, [8, 3, 1])
    scheduler.received(0, short=True)  # the high queue is empty
    order = await grants(scheduler, {1: 20, 2: 20}, 20)
    assert [order.count(level) for level in (1, 2)] == [15, 5]


async def test_a_level_whose_messages_are_on_the_way_keeps_earning_its_share() -> None:
    scheduler = Scheduler(1, [8, 3, 1])  # high has not been received from yet: it may have backlog
    scheduler.received(1, short=True)  # the others' queues hold no more than what is waiting here
    scheduler.received(2, short=True)
    order = await grants(scheduler, {1: 20, 2: 20}, 20)
    assert [order.count(level) for level in (1, 2)] == [15, 5]  # nothing idles meanwhile
    assert scheduler._owed[0] == 8  # the turns it missed, at most one round (its weight)
    order = await grants(scheduler, {0: 20, 1: 20, 2: 20}, 20)
    assert order[:8] == [0] * 8  # repaid first
    for level, share in enumerate((8, 3, 1)):  # then the usual interleaving
        assert abs(order[8:20].count(level) - share) <= 1


async def test_strict_turns_wait_for_higher_levels_to_be_empty() -> None:
    scheduler = Scheduler(2, [1, 1], mode="strict")
    scheduler.held(0, 1)  # a high message is held, not started
    started: list[str] = []

    async def low() -> None:
        async with scheduler.turn(1):
            started.append("low")

    async with anyio.create_task_group() as tg:
        tg.start_soon(low)
        await anyio.sleep(0.01)
        assert started == []
        assert not scheduler.may_receive(1)
        scheduler.held(0, -1)  # it started; but the high queue is not known to be empty yet
        await anyio.sleep(0.01)
        assert started == []
        scheduler.received(0, short=True)  # its last receive came back short: empty
        await anyio.sleep(0.01)
        assert started == ["low"]
        assert scheduler.may_receive(1)


@pytest.mark.parametrize(("concurrency", "reserved"), [(2, {0: 2}), (1, {0: 2})])
def test_reservations_must_leave_shared_slots(concurrency: int, reserved: dict[int, int]) -> None:
    with pytest.raises(qfan.ConfigError, match="reserved slots"):
        Scheduler(concurrency, [1, 1], reserved=reserved)
