"""`SchedulerApi`: the `ScheduleApi` port of core, implemented over `ScheduleService`.

Surfaces see `ScheduleView`s (times in POSIX seconds); the scheduler keeps its own `Schedule`
(integer milliseconds, triggers) inside.
"""

from __future__ import annotations

import builtins

from shoal.core.errors import InvalidArgument
from shoal.core.ports import Enqueued
from shoal.core.schedules import ScheduleInput, ScheduleView
from shoal.scheduler.model import Schedule
from shoal.scheduler.service import ScheduleService
from shoal.scheduler.triggers import CronTrigger, IntervalTrigger

__all__ = ["SchedulerApi", "view_of"]

_MAX_UPCOMING = 100


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def view_of(schedule: Schedule) -> ScheduleView:
    """The user's view of a schedule."""
    trigger = schedule.trigger
    if isinstance(trigger, IntervalTrigger):
        kind, every, cron, zone, at = "interval", trigger.every_ms, None, "UTC", None
    elif isinstance(trigger, CronTrigger):
        kind, every, cron, zone, at = "cron", None, trigger.expression, trigger.timezone, None
    else:
        kind, every, cron, zone, at = "once", None, None, "UTC", trigger.at_ms / 1000
    return ScheduleView(
        id=schedule.id,
        namespace=schedule.namespace,
        queue=schedule.queue,
        task=schedule.task,
        kind=kind,
        every_ms=every,
        cron=cron,
        timezone=zone,
        at=at,
        paused=schedule.paused,
        overlap=schedule.overlap,
        catch_up=schedule.catch_up,
        catch_up_limit=schedule.catch_up_limit,
        jitter_ms=schedule.jitter_ms,
        priority=schedule.priority,
        max_attempts=schedule.max_attempts,
        timeout=schedule.timeout,
        tags=schedule.tags,
        payload=schedule.payload,
        content_type=schedule.content_type,
        created_at=schedule.created_at,
        start_at=_seconds(schedule.start_ms),
        end_at=_seconds(schedule.end_ms),
        next_fire_at=_seconds(schedule.next_due_ms),
        last_fire_at=_seconds(schedule.last_fire_ms),
        last_job_id=schedule.last_job_id,
    )


class SchedulerApi:
    """Schedules for the surfaces (gRPC, HTTP, TCP, CLI)."""

    def __init__(self, service: ScheduleService) -> None:
        self.service = service

    async def add(self, data: ScheduleInput) -> ScheduleView:
        """See `ScheduleApi.add`."""
        return view_of(await self.service.add(data))

    async def put(self, data: ScheduleInput) -> ScheduleView:
        """See `ScheduleApi.put`."""
        return view_of(await self.service.put(data))

    async def get(self, namespace: str, schedule_id: str) -> ScheduleView:
        """See `ScheduleApi.get`."""
        return view_of(await self.service.get(namespace, schedule_id))

    async def list(self, namespace: str | None = None) -> builtins.list[ScheduleView]:
        """See `ScheduleApi.list`."""
        return [view_of(schedule) for schedule in await self.service.list(namespace)]

    async def remove(self, namespace: str, schedule_id: str) -> None:
        """See `ScheduleApi.remove`."""
        await self.service.remove(namespace, schedule_id)

    async def pause(self, namespace: str, schedule_id: str) -> ScheduleView:
        """See `ScheduleApi.pause`."""
        return view_of(await self.service.pause(namespace, schedule_id))

    async def resume(self, namespace: str, schedule_id: str) -> ScheduleView:
        """See `ScheduleApi.resume`."""
        return view_of(await self.service.resume(namespace, schedule_id))

    async def trigger_now(self, namespace: str, schedule_id: str) -> Enqueued:
        """See `ScheduleApi.trigger_now`."""
        return await self.service.trigger_now(namespace, schedule_id)

    async def backfill(
        self, namespace: str, schedule_id: str, start: float, end: float
    ) -> builtins.list[Enqueued]:
        """See `ScheduleApi.backfill`."""
        return await self.service.backfill(namespace, schedule_id, start, end)

    async def upcoming(
        self, namespace: str, schedule_id: str, count: int = 5
    ) -> builtins.list[float]:
        """The next `count` slots after now (without jitter), for people to read."""
        if not 1 <= count <= _MAX_UPCOMING:
            raise InvalidArgument("count", f"must be between 1 and {_MAX_UPCOMING}")
        schedule = await self.service.get(namespace, schedule_id)
        fires: builtins.list[float] = []
        after = max(int(self.service.queue.clock.now() * 1000), schedule.resume_point())
        while len(fires) < count and (slot := schedule.next_slot(after)) is not None:
            fires.append(schedule.due_ms(slot) / 1000)
            after = slot
        return fires
