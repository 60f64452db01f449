"""The scheduler's decisions in isolation: which waiting level gets the next handler slot."""

import anyio
import pytest

import qfan
from qfan._worker._scheduler import Scheduler


async def grants(scheduler: Scheduler, waiting: dict[int, int], count: int) -> list[int]:
    """Make ``waiting[level]`` units ready per level, then take turns one at a time: the levels served."""
    for level, n in waiting.items():
        for _ in range(n):
            scheduler.ready(level)
    order: list[int] = []
    for _ in range(sum(waiting.values())):
        level, slot = await scheduler.take()
        order.append(level)
        scheduler.done(slot)
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
    scheduler.ready(1)
    started: list[int] = []

    async def runner() -> None:
        level, _ = await scheduler.take()
        started.append(level)

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await anyio.sleep(0.01)
        assert started == []
        assert not scheduler.may_receive(1)
        scheduler.held(0, -1)  # it started; but the high queue is not known to be empty yet
        await anyio.sleep(0.01)
        assert started == []
        scheduler.received(0, short=True)  # its last receive came back short: empty
        await anyio.sleep(0.01)
        assert started == [1]
        assert scheduler.may_receive(1)


async def test_reserved_slots_are_only_used_by_their_level() -> None:
    scheduler = Scheduler(2, [1, 1], reserved={0: 1})
    scheduler.ready(1)
    scheduler.ready(1)
    level, slot = await scheduler.take()
    assert level == 1
    with anyio.move_on_after(0.05) as waited:
        await scheduler.take()  # the other slot is high's
    assert waited.cancelled_caught
    scheduler.ready(0)
    assert (await scheduler.take())[0] == 0
    scheduler.done(slot)
    assert (await scheduler.take())[0] == 1


@pytest.mark.parametrize(("concurrency", "reserved"), [(2, {0: 2}), (1, {0: 2})])
def test_reservations_must_leave_shared_slots(concurrency: int, reserved: dict[int, int]) -> None:
    with pytest.raises(qfan.ConfigError, match="reserved slots"):
        Scheduler(concurrency, [1, 1], reserved=reserved)
