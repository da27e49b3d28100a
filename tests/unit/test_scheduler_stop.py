"""`SchedulerRunner.stop()` at any point of the loop ends `run()` without the clock moving.

The tests' clock is manual: a wake-up that `run()` loses is never made up by a timer, so a
lost `stop()` shows as a hang (caught here by a short timeout).
"""

from __future__ import annotations

import asyncio

from shoal.core.clock import ManualClock
from shoal.core.service import QueueService
from shoal.scheduler import SchedulerRunner
from shoal.stores.memory import MemoryStore
from tests.unit._scheduler_helpers import FAST, T0


class GatedLeaderStore(MemoryStore):
    """A memory store whose lease attempts wait for the test to answer them."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: asyncio.Queue[asyncio.Future[bool]] = asyncio.Queue()

    async def try_acquire_leader(self, name: str, holder: str, ttl: float, now: float) -> bool:
        answer = asyncio.get_running_loop().create_future()
        await self.attempts.put(answer)
        return await answer


async def test_stop_during_a_followers_lease_attempt_ends_run() -> None:
    store = GatedLeaderStore()
    runner = SchedulerRunner(QueueService(store, clock=ManualClock(T0)), "b", FAST)
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(2):
            attempt = await store.attempts.get()
            runner.stop()  # while the attempt is in flight
            attempt.set_result(False)  # another replica leads
            await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not runner.is_leader


async def test_stop_during_a_leaders_renewal_ends_run() -> None:
    store = GatedLeaderStore()
    clock = ManualClock(T0)
    runner = SchedulerRunner(QueueService(store, clock=clock), "a", FAST)
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(2):
            (await store.attempts.get()).set_result(True)
            while not runner.is_leader:
                await asyncio.sleep(0)
            clock.advance(FAST.renew_interval)
            attempt = await store.attempts.get()
            runner.stop()
            attempt.set_result(True)
            await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not runner.is_leader
