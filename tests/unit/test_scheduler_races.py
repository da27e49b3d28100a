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
from tests.unit._scheduler_helpers import T0, Rig, seconds

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


async def fire_two_then_race(rig: Rig, other_writer: Hook) -> None:
    """Let the runner fire slots 1 and 2, the other writer's change landing between the
    runner's read and its write of slot 2's progress; then run 3 more seconds.
    """
    await rig.schedules.add(every_second())
    await rig.start_runner("a")
    await rig.advance(1.5)
    racing(rig).before_write = other_writer
    await rig.advance(1.0)
    assert racing(rig).before_write is None, "the runner did not write its progress"
    await rig.advance(3.0)


async def test_a_pause_during_the_runners_write_stays(rig: Rig) -> None:
    await fire_two_then_race(rig, lambda: rig.schedules.pause("default", "tick"))
    schedule = await rig.schedules.get("default", "tick")
    assert schedule.paused and schedule.next_due_ms is None
    assert await rig.slots("tick") == seconds(1, 2)
    assert schedule.cursor_ms == seconds(2)[0]  # and the runner's progress is kept too


async def test_a_removal_during_the_runners_write_stays(rig: Rig) -> None:
    await fire_two_then_race(rig, lambda: rig.schedules.remove("default", "tick"))
    assert await rig.store.get_schedule("default", "tick") is None
    assert await rig.slots("tick") == seconds(1, 2)


async def test_an_update_during_the_runners_write_stays(rig: Rig) -> None:
    await fire_two_then_race(
        rig, lambda: rig.schedules.update("default", "tick", every_second("tock"))
    )
    assert (await rig.schedules.get("default", "tick")).task == "tock"
    tasks = [job.task for job in await rig.jobs()]
    assert tasks == ["tick", "tick", "tock", "tock", "tock"]


@pytest.mark.parametrize("action", ["pause", "update", "resume"])
async def test_a_change_keeps_a_fire_recorded_meanwhile(rig: Rig, action: str) -> None:
    await rig.schedules.add(every_second())
    if action == "resume":
        await rig.schedules.pause("default", "tick")
    fired: list[str] = []

    async def trigger_now() -> None:
        fired.append((await rig.schedules.trigger_now("default", "tick")).job.id)

    racing(rig).before_write = trigger_now
    if action == "update":
        await rig.schedules.update("default", "tick", every_second("tock"))
    else:
        await getattr(rig.schedules, action)("default", "tick")
    schedule = await rig.schedules.get("default", "tick")
    assert fired and schedule.last_job_id == fired[0]
    assert schedule.last_fire_ms == int(T0 * 1000)
    assert schedule.paused is (action == "pause")


async def test_two_adds_of_one_id_one_is_a_conflict(rig: Rig) -> None:
    racing(rig).before_write = lambda: rig.schedules.add(every_second("first"))
    with pytest.raises(Conflict):
        await rig.schedules.add(every_second("second"))
    assert (await rig.schedules.get("default", "tick")).task == "first"


async def test_put_updates_a_schedule_created_meanwhile(rig: Rig) -> None:
    racing(rig).before_write = lambda: rig.schedules.add(every_second("first"))
    await rig.schedules.put(every_second("second"))
    assert (await rig.schedules.get("default", "tick")).task == "second"
