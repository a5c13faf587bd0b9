"""The memory budget: shares that add up, waits that end, first come first served, no room lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.budget import (
    BudgetExceeded,
    BudgetFull,
    MemoryBudget,
    Reservation,
    default_memory_budget,
    memory_limit,
)

pytestmark = pytest.mark.anyio


async def test_shares_add_up_and_a_release_wakes_the_first_waiter() -> None:
    emptied: list[int] = []
    budget = MemoryBudget(100, wait=5, on_empty=lambda: emptied.append(budget.used))
    first, second, third = budget.reservation(), budget.reservation(), budget.reservation()
    await first.resize(60)
    await second.resize(40)
    assert budget.used == 100
    waiting = asyncio.ensure_future(third.resize(30))
    await asyncio.sleep(0.01)
    assert not waiting.done() and budget.used == 100
    await first.resize(20)  # shrinking never waits, and makes room
    await asyncio.wait_for(waiting, 1)
    assert (third.nbytes, budget.used) == (30, 90)
    for share in (first, second, third):
        share.release()
    share.release()  # twice: nothing more is given back
    assert budget.used == 0
    assert emptied == [0]  # once, when the last share went


async def test_a_waiter_gets_503_in_time_and_takes_no_room() -> None:
    budget = MemoryBudget(100, wait=0.2)
    holder, late = budget.reservation(), budget.reservation()
    await holder.resize(90)
    started = asyncio.get_running_loop().time()
    with pytest.raises(BudgetFull) as raised:
        await late.resize(20)
    assert 0.15 <= asyncio.get_running_loop().time() - started < 2
    assert raised.value.waited == 0.2
    assert (late.nbytes, budget.used) == (0, 90)
    holder.release()
    await late.resize(20)  # room now
    assert budget.used == 20


async def test_more_than_the_whole_budget_is_refused_at_once() -> None:
    budget = MemoryBudget(100, wait=30)
    share = budget.reservation()
    with pytest.raises(BudgetExceeded):
        await asyncio.wait_for(share.resize(101), 1)
    assert budget.used == 0


async def test_first_come_first_served_a_small_request_does_not_pass_a_large_one() -> None:
    budget = MemoryBudget(100, wait=5)
    holder, large, small = budget.reservation(), budget.reservation(), budget.reservation()
    await holder.resize(50)
    large_waits = asyncio.ensure_future(large.resize(80))
    await asyncio.sleep(0.01)
    small_waits = asyncio.ensure_future(small.resize(10))  # would fit, but the large one came first
    await asyncio.sleep(0.01)
    assert not small_waits.done()
    holder.release()
    await asyncio.wait_for(asyncio.gather(large_waits, small_waits), 1)
    assert budget.used == 90


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    budget = MemoryBudget(100, wait=5)
    holder, leaving, behind = budget.reservation(), budget.reservation(), budget.reservation()
    await holder.resize(100)
    leaving_task = asyncio.ensure_future(leaving.resize(50))
    behind_task = asyncio.ensure_future(behind.resize(50))
    await asyncio.sleep(0.01)
    leaving_task.cancel()
    await asyncio.sleep(0.01)
    await holder.resize(50)
    await asyncio.wait_for(behind_task, 1)
    assert (leaving.nbytes, behind.nbytes, budget.used) == (0, 50, 100)


def test_the_default_is_a_share_of_the_cgroup_limit(tmp_path: Path) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text("1073741824\n")
    assert memory_limit((limit,)) == 1 << 30
    limit.write_text("max\n")  # no limit: physical memory
    physical = memory_limit((limit,))
    assert physical > 1 << 28
    assert memory_limit((tmp_path / "absent",)) == physical
    assert default_memory_budget(workers=2) == int(memory_limit() * 0.6) // 2


async def test_memory_is_given_back_once_the_last_answer_has_left() -> None:
    # A streamed or HTTP/1.0 answer leaves the compute gate before it is sent: the gate's own idle
    # release comes too early for it. The budget asks again when its last share is given back.
    from service.api.routing import ComputeGate

    releases: list[float] = []
    loop = asyncio.get_running_loop()
    gate = ComputeGate(2, release_memory=lambda: releases.append(loop.time()), idle_seconds=0.05)
    budget = MemoryBudget(100, wait=1, on_empty=gate.schedule_release)
    share = budget.reservation()
    await share.resize(80)
    async with gate.admit():
        pass  # computed; the answer is still on its way
    await asyncio.sleep(0.2)
    assert len(releases) == 1  # the gate's release, while the answer is still held
    sent = loop.time()
    share.release()  # the answer's last byte has left
    await asyncio.sleep(0.2)
    assert len(releases) == 2
    assert releases[1] >= sent


async def test_requests_that_each_hold_a_part_do_not_wait_for_each_other() -> None:
    """Three bodies in hand (30 each) that must each grow to 90: holding while waiting, they would wait
    for each other until all timed out; giving back and waiting for the whole, they go one by one."""
    budget = MemoryBudget(100, wait=2)
    shares = [budget.reservation() for _ in range(3)]
    for share in shares:
        await share.resize(30)

    async def grow_compute_release(share: Reservation) -> None:
        await share.resize(90)
        await asyncio.sleep(0.05)  # computing
        share.release()

    await asyncio.wait_for(asyncio.gather(*(grow_compute_release(share) for share in shares)), 1.5)
    assert budget.used == 0
