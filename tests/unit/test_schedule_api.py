from __future__ import annotations

import pytest

from shoal.core.auth import Authorizer, Principal, Role
from shoal.core.clock import ManualClock
from shoal.core.errors import InvalidArgument, PermissionDenied
from shoal.core.schedules import CatchUp, GuardedSchedules, Overlap, ScheduleInput
from shoal.core.service import QueueService
from shoal.scheduler import SchedulerApi, ScheduleService
from shoal.stores.memory import MemoryStore


@pytest.fixture
def api(manual_clock: ManualClock) -> SchedulerApi:
    return SchedulerApi(ScheduleService(QueueService(MemoryStore(), clock=manual_clock)))


async def test_views_carry_the_definition_in_seconds(
    api: SchedulerApi, manual_clock: ManualClock
) -> None:
    now = manual_clock.now()
    view = await api.add(ScheduleInput("tick", id="s1", every_ms=250, overlap=Overlap.SKIP))
    assert (view.kind, view.every_ms, view.cron, view.overlap) == ("interval", 250, None, "skip")
    assert view.next_fire_at == pytest.approx(now + 0.25)
    assert await api.upcoming("default", "s1", 3) == pytest.approx(
        [now + 0.25, now + 0.5, now + 0.75]
    )
    cron = await api.add(ScheduleInput("report", cron="0 9 * * *", timezone="Europe/Paris"))
    assert (cron.kind, cron.cron, cron.timezone, cron.catch_up) == (
        "cron",
        "0 9 * * *",
        "Europe/Paris",
        CatchUp.ONE,
    )
    once = await api.add(ScheduleInput("once", at=now + 60))
    assert once.kind == "once" and once.at == pytest.approx(now + 60)
    assert [v.id for v in await api.list("default")] == sorted([view.id, cron.id, once.id])
    with pytest.raises(InvalidArgument):
        await api.upcoming("default", "s1", 0)


async def test_paused_schedules_have_no_next_fire(api: SchedulerApi) -> None:
    await api.add(ScheduleInput("tick", id="s1", every_ms=1000))
    assert (await api.pause("default", "s1")).next_fire_at is None
    assert (await api.resume("default", "s1")).next_fire_at is not None


async def test_guarded_schedules_need_the_right(api: SchedulerApi) -> None:
    viewer = Principal("v", "token", {"default": frozenset({Role.VIEWER})})
    admin = Principal("a", "token", {"default": frozenset({Role.ADMIN})})
    as_viewer = GuardedSchedules(api, viewer, Authorizer())
    with pytest.raises(PermissionDenied):
        await as_viewer.add(ScheduleInput("tick", every_ms=1000))
    assert await api.list() == []
    created = await GuardedSchedules(api, admin, Authorizer()).add(
        ScheduleInput("tick", every_ms=1000)
    )
    assert (await as_viewer.get("default", created.id)).id == created.id
    with pytest.raises(PermissionDenied):
        await as_viewer.trigger_now("default", created.id)
    with pytest.raises(PermissionDenied):
        await as_viewer.list("other")
