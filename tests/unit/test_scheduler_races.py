"""Two writers of one schedule: another writer (a replica, an API call) commits between a
writer's read of the schedule and its write. Neither the runner's progress nor a definition
change (add, pause, update, resume, remove) may be lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shoal.core.clock import ManualClock
from shoal.core.errors import Conflict
from shoal.core.ports import ScheduleRecord
from shoal.core.service import QueueService
from shoal.scheduler import ScheduleInput, ScheduleService
from shoal.stores.memory import MemoryStore
from tests.unit._scheduler_helpers import T0, Rig

Hook = Callable[[], Awaitable[object]]


class RacingStore(MemoryStore):
    """A memory store where `before_write` (once armed) runs just before the next schedule
    write: the other writer's change lands between the writer's read and its write.
    """

    def __init__(self) -> None:
        super().__init__()
        self.before_write: Hook | None = None

    async def _interleave(self) -> None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            await hook()

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        await self._interleave()
        await super().save_schedule(schedule)

    async def create_schedule(self, schedule: ScheduleRecord) -> None:
        await self._interleave()
        await super().create_schedule(schedule)

    async def replace_schedule(self, schedule: ScheduleRecord, expected: ScheduleRecord) -> bool:
        await self._interleave()
        return await super().replace_schedule(schedule, expected)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock(T0)
    queue = QueueService(RacingStore(), clock=clock)
    rig = Rig(clock, queue.store, queue, ScheduleService(queue))  # type: ignore[arg-type]
    yield rig
    await rig.stop_all()


def racing(rig: Rig) -> RacingStore:
    assert isinstance(rig.store, RacingStore)
    return rig.store


def every_second(task: str = "tick") -> ScheduleInput:
    return ScheduleInput(task=task, id="tick", every_ms=1000)


async def test_two_adds_of_one_id_one_is_a_conflict(rig: Rig) -> None:
    racing(rig).before_write = lambda: rig.schedules.add(every_second("first"))
    with pytest.raises(Conflict):
        await rig.schedules.add(every_second("second"))
    assert (await rig.schedules.get("default", "tick")).task == "first"


async def test_put_updates_a_schedule_created_meanwhile(rig: Rig) -> None:
    racing(rig).before_write = lambda: rig.schedules.add(every_second("first"))
    await rig.schedules.put(every_second("second"))
    assert (await rig.schedules.get("default", "tick")).task == "second"
