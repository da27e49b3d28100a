from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable

from shoal.core.auth import Authorizer, Principal
from shoal.core.ports import Enqueued
from shoal.core.schedules import GuardedSchedules, ScheduleApi, ScheduleInput, ScheduleView

#: (action, namespace, target) -> None: writes one audit entry for the caller.
Audit = Callable[[str, str, str], Awaitable[None]]


class AuditedSchedules(GuardedSchedules):
    """`GuardedSchedules` that audits every change it lets through."""

    def __init__(
        self, api: ScheduleApi, principal: Principal, authorizer: Authorizer, audit: Audit
    ) -> None:
        super().__init__(api, principal, authorizer)
        self._audit = audit

    async def add(self, data: ScheduleInput) -> ScheduleView:
        view = await super().add(data)
        await self._audit("schedule.create", view.namespace, view.id)
        return view

    async def put(self, data: ScheduleInput) -> ScheduleView:
        view = await super().put(data)
        await self._audit("schedule.put", view.namespace, view.id)
        return view

    async def remove(self, namespace: str, schedule_id: str) -> None:
        await super().remove(namespace, schedule_id)
        await self._audit("schedule.delete", namespace, schedule_id)

    async def pause(self, namespace: str, schedule_id: str) -> ScheduleView:
        view = await super().pause(namespace, schedule_id)
        await self._audit("schedule.pause", namespace, schedule_id)
        return view

    async def resume(self, namespace: str, schedule_id: str) -> ScheduleView:
        view = await super().resume(namespace, schedule_id)
        await self._audit("schedule.resume", namespace, schedule_id)
        return view

    async def trigger_now(self, namespace: str, schedule_id: str) -> Enqueued:
        enqueued = await super().trigger_now(namespace, schedule_id)
        await self._audit("schedule.trigger", namespace, schedule_id)
        return enqueued

    async def backfill(
        self, namespace: str, schedule_id: str, start: float, end: float
    ) -> builtins.list[Enqueued]:
        enqueued = await super().backfill(namespace, schedule_id, start, end)
        await self._audit("schedule.backfill", namespace, schedule_id)
        return enqueued
