"""Schedules as the surfaces see them: the input a user gives, the view they get back, and the
`ScheduleApi` port that the scheduler implements.

Protocols import only core, so they reach schedules through this port; `shoal.scheduler` holds
the trigger maths and the runner behind it, and the composition root hands its facade over.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shoal.core.auth import Action, Authorizer, Principal
from shoal.core.model import DEFAULT_NAMESPACE, DEFAULT_QUEUE
from shoal.core.ports import Enqueued

__all__ = [
    "CatchUp",
    "GuardedSchedules",
    "Overlap",
    "ScheduleApi",
    "ScheduleInput",
    "ScheduleView",
]


class Overlap(StrEnum):
    """What a fire does while the previous fire's job has not finished."""

    #: Enqueue anyway.
    ALLOW = "allow"
    #: Skip this slot (the previous job is still queued or running).
    SKIP = "skip"
    #: Cancel the previous job, then enqueue.
    CANCEL_PREVIOUS = "cancel_previous"


class CatchUp(StrEnum):
    """What a scheduler does with the slots missed while no scheduler ran."""

    #: Fire none of them; resume with the next slot.
    SKIP = "skip"
    #: Fire once, for the latest missed slot.
    ONE = "one"
    #: Fire each missed slot once, the latest `catch_up_limit` of them.
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    """A schedule as a user defines it. Exactly one of `every_ms`, `cron`, `at` is given."""

    task: str
    namespace: str = DEFAULT_NAMESPACE
    queue: str = DEFAULT_QUEUE
    #: The id; a new one is made when None. Unique per namespace.
    id: str | None = None
    #: Fire every this many milliseconds (at least 10), from `start_at` or one interval on.
    every_ms: int | None = None
    #: A cron expression: 5 fields, or 6 with seconds first.
    cron: str | None = None
    #: The IANA time zone of `cron`.
    timezone: str = "UTC"
    #: Fire once, at this POSIX time; one already due is a missed slot (see `catch_up`).
    at: float | None = None
    payload: bytes = b"null"
    content_type: str = "application/json"
    priority: int = 0
    max_attempts: int | None = None
    timeout: float | None = None
    tags: tuple[str, ...] = ()
    overlap: str = Overlap.ALLOW
    catch_up: str = CatchUp.ONE
    #: With `catch_up="all"`: fire at most this many (the latest) missed slots.
    catch_up_limit: int = 100
    #: Each fire waits a pseudo-random 0..jitter_ms after its slot (the same for every replica).
    jitter_ms: int = 0
    #: No slot before this POSIX time.
    start_at: float | None = None
    #: No slot after this POSIX time.
    end_at: float | None = None
    paused: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A schedule as shown to a user: its definition, state and next fires (POSIX seconds)."""

    id: str
    namespace: str
    queue: str
    task: str
    #: `interval`, `cron` or `once`.
    kind: str
    every_ms: int | None
    cron: str | None
    timezone: str
    at: float | None
    paused: bool
    overlap: Overlap
    catch_up: CatchUp
    catch_up_limit: int
    jitter_ms: int
    priority: int
    max_attempts: int | None
    timeout: float | None
    tags: tuple[str, ...]
    payload: bytes
    content_type: str
    created_at: float
    start_at: float | None
    end_at: float | None
    next_fire_at: float | None
    last_fire_at: float | None
    last_job_id: str | None


class ScheduleApi(Protocol):
    """Define, inspect and steer schedules."""

    async def add(self, data: ScheduleInput) -> ScheduleView:
        """Create; `InvalidArgument` for a bad field (nothing stored), `Conflict` for a taken id."""
        ...

    async def put(self, data: ScheduleInput) -> ScheduleView:
        """Create or update the schedule `data.id`."""
        ...

    async def get(self, namespace: str, schedule_id: str) -> ScheduleView:
        """The schedule, or `NotFound`."""
        ...

    async def list(self, namespace: str | None = None) -> builtins.list[ScheduleView]:
        """Schedules of one namespace (or all), by id."""
        ...

    async def remove(self, namespace: str, schedule_id: str) -> None:
        """Delete (its jobs stay); `NotFound` if there is none."""
        ...

    async def pause(self, namespace: str, schedule_id: str) -> ScheduleView:
        """Stop firing; idempotent."""
        ...

    async def resume(self, namespace: str, schedule_id: str) -> ScheduleView:
        """Fire again from the next slot; the paused slots are not caught up."""
        ...

    async def trigger_now(self, namespace: str, schedule_id: str) -> Enqueued:
        """Enqueue the schedule's job now, outside its slots."""
        ...

    async def backfill(
        self, namespace: str, schedule_id: str, start: float, end: float
    ) -> builtins.list[Enqueued]:
        """One job for every slot in [start, end] that has none yet."""
        ...

    async def upcoming(
        self, namespace: str, schedule_id: str, count: int = 5
    ) -> builtins.list[float]:
        """The next `count` fire times (POSIX seconds)."""
        ...


class GuardedSchedules:
    """`ScheduleApi` as one caller may use it: reading needs `read`, the rest
    `manage_schedules`, in the schedule's namespace.
    """

    def __init__(self, api: ScheduleApi, principal: Principal, authorizer: Authorizer) -> None:
        self.api = api
        self.principal = principal
        self.authorizer = authorizer

    def _require(self, action: Action, namespace: str) -> None:
        self.authorizer.require(self.principal, action, namespace)

    async def add(self, data: ScheduleInput) -> ScheduleView:
        """`ScheduleApi.add` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, data.namespace)
        return await self.api.add(data)

    async def put(self, data: ScheduleInput) -> ScheduleView:
        """`ScheduleApi.put` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, data.namespace)
        return await self.api.put(data)

    async def get(self, namespace: str, schedule_id: str) -> ScheduleView:
        """`ScheduleApi.get` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.api.get(namespace, schedule_id)

    async def list(self, namespace: str) -> builtins.list[ScheduleView]:
        """`ScheduleApi.list` of one namespace (right: read)."""
        self._require(Action.READ, namespace)
        return await self.api.list(namespace)

    async def remove(self, namespace: str, schedule_id: str) -> None:
        """`ScheduleApi.remove` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, namespace)
        await self.api.remove(namespace, schedule_id)

    async def pause(self, namespace: str, schedule_id: str) -> ScheduleView:
        """`ScheduleApi.pause` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, namespace)
        return await self.api.pause(namespace, schedule_id)

    async def resume(self, namespace: str, schedule_id: str) -> ScheduleView:
        """`ScheduleApi.resume` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, namespace)
        return await self.api.resume(namespace, schedule_id)

    async def trigger_now(self, namespace: str, schedule_id: str) -> Enqueued:
        """`ScheduleApi.trigger_now` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, namespace)
        return await self.api.trigger_now(namespace, schedule_id)

    async def backfill(
        self, namespace: str, schedule_id: str, start: float, end: float
    ) -> builtins.list[Enqueued]:
        """`ScheduleApi.backfill` (right: manage_schedules)."""
        self._require(Action.MANAGE_SCHEDULES, namespace)
        return await self.api.backfill(namespace, schedule_id, start, end)

    async def upcoming(
        self, namespace: str, schedule_id: str, count: int = 5
    ) -> builtins.list[float]:
        """`ScheduleApi.upcoming` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.api.upcoming(namespace, schedule_id, count)
