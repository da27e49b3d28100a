"""`shoal.v1.ScheduleService`: schedules over gRPC.

Protocols reach only `shoal.core`, so this servicer talks to the scheduler through
`ScheduleBackend`, a port it declares with plain values (`ScheduleFields` in, `ScheduleView`
out); the composition root adapts `shoal.scheduler.ScheduleService` to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc.aio

from shoal.core.model import DEFAULT_NAMESPACE, DEFAULT_QUEUE, Job
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.shoal.v1 import model_pb2, schedules_pb2, schedules_pb2_grpc

__all__ = ["ScheduleBackend", "ScheduleFields", "ScheduleServicer", "ScheduleView"]

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class ScheduleFields:
    """A schedule's definition, field for field the scheduler's `ScheduleInput`."""

    task: str
    namespace: str = DEFAULT_NAMESPACE
    queue: str = DEFAULT_QUEUE
    id: str | None = None
    every_ms: int | None = None
    cron: str | None = None
    timezone: str = "UTC"
    at: float | None = None
    payload: bytes = b"null"
    content_type: str = "application/json"
    priority: int = 0
    max_attempts: int | None = None
    timeout: float | None = None
    tags: tuple[str, ...] = ()
    overlap: str = "allow"
    catch_up: str = "one"
    catch_up_limit: int = 100
    jitter_ms: int = 0
    start_at: float | None = None
    end_at: float | None = None
    paused: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A stored schedule: its definition and its firing state."""

    fields: ScheduleFields
    created_at: float
    next_fire_at: float | None = None
    last_fire_at: float | None = None
    last_job_id: str | None = None


class ScheduleBackend(Protocol):
    """What the servicer needs from the scheduler (see the module docstring)."""

    async def add(self, fields: ScheduleFields) -> ScheduleView:
        """Create a schedule (`Conflict` if the id is taken)."""
        ...

    async def put(self, fields: ScheduleFields) -> ScheduleView:
        """Create or replace the schedule `fields.id`."""
        ...

    async def get(self, namespace: str, schedule_id: str) -> ScheduleView:
        """The schedule, or `NotFound`."""
        ...

    async def list(self, namespace: str | None) -> Sequence[ScheduleView]:
        """Schedules of one namespace or all."""
        ...

    async def remove(self, namespace: str, schedule_id: str) -> None:
        """Delete a schedule."""
        ...

    async def pause(self, namespace: str, schedule_id: str) -> ScheduleView:
        """Stop firing."""
        ...

    async def resume(self, namespace: str, schedule_id: str) -> ScheduleView:
        """Fire again from the next slot."""
        ...

    async def trigger_now(self, namespace: str, schedule_id: str) -> Job:
        """Enqueue the schedule's job now."""
        ...


def _fields(spec: schedules_pb2.ScheduleSpec) -> ScheduleFields:
    has = spec.HasField
    trigger = spec.WhichOneof("trigger")
    return ScheduleFields(
        task=spec.task,
        namespace=codec.namespace(spec.namespace),
        queue=spec.queue or DEFAULT_QUEUE,
        id=spec.id or None,
        every_ms=spec.every_ms if trigger == "every_ms" else None,
        cron=spec.cron if trigger == "cron" else None,
        timezone=spec.timezone or "UTC",
        at=spec.at if trigger == "at" else None,
        payload=spec.payload or b"null",
        content_type=spec.content_type or "application/json",
        priority=spec.priority,
        max_attempts=spec.max_attempts if has("max_attempts") else None,
        timeout=spec.timeout if has("timeout") else None,
        tags=tuple(spec.tags),
        overlap=spec.overlap or "allow",
        catch_up=spec.catch_up or "one",
        catch_up_limit=spec.catch_up_limit or 100,
        jitter_ms=spec.jitter_ms,
        start_at=spec.start_at if has("start_at") else None,
        end_at=spec.end_at if has("end_at") else None,
        paused=spec.paused,
    )


def _to_pb(view: ScheduleView) -> schedules_pb2.Schedule:
    f = view.fields
    spec = schedules_pb2.ScheduleSpec(
        namespace=f.namespace,
        id=f.id or "",
        queue=f.queue,
        task=f.task,
        timezone=f.timezone,
        payload=f.payload,
        content_type=f.content_type,
        priority=f.priority,
        tags=f.tags,
        overlap=f.overlap,
        catch_up=f.catch_up,
        catch_up_limit=f.catch_up_limit,
        jitter_ms=f.jitter_ms,
        paused=f.paused,
    )
    optional = {
        "every_ms": f.every_ms,
        "cron": f.cron,
        "at": f.at,
        "max_attempts": f.max_attempts,
        "timeout": f.timeout,
        "start_at": f.start_at,
        "end_at": f.end_at,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(spec, name, value)
    message = schedules_pb2.Schedule(
        spec=spec, created_at=view.created_at, last_job_id=view.last_job_id or ""
    )
    if view.next_fire_at is not None:
        message.next_fire_at = view.next_fire_at
    if view.last_fire_at is not None:
        message.last_fire_at = view.last_fire_at
    return message


class ScheduleServicer(schedules_pb2_grpc.ScheduleServiceServicer):
    """Each method decodes, calls one `ScheduleBackend` method, and encodes."""

    def __init__(self, backend: ScheduleBackend) -> None:
        self._backend = backend

    @mapped
    async def CreateSchedule(
        self, request: schedules_pb2.ScheduleSpec, context: Context
    ) -> schedules_pb2.Schedule:
        """Create a schedule."""
        return _to_pb(await self._backend.add(_fields(request)))

    @mapped
    async def PutSchedule(
        self, request: schedules_pb2.ScheduleSpec, context: Context
    ) -> schedules_pb2.Schedule:
        """Create or replace a schedule by id."""
        return _to_pb(await self._backend.put(_fields(request)))

    @mapped
    async def GetSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.Schedule:
        """One schedule."""
        return _to_pb(await self._backend.get(codec.namespace(request.namespace), request.id))

    @mapped
    async def ListSchedules(
        self, request: schedules_pb2.ListSchedulesRequest, context: Context
    ) -> schedules_pb2.ListSchedulesResponse:
        """Schedules of a namespace, or of all."""
        views = await self._backend.list(request.namespace or None)
        return schedules_pb2.ListSchedulesResponse(schedules=[_to_pb(view) for view in views])

    @mapped
    async def DeleteSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.DeleteScheduleResponse:
        """Delete a schedule."""
        await self._backend.remove(codec.namespace(request.namespace), request.id)
        return schedules_pb2.DeleteScheduleResponse()

    @mapped
    async def PauseSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.Schedule:
        """Stop firing."""
        return _to_pb(await self._backend.pause(codec.namespace(request.namespace), request.id))

    @mapped
    async def ResumeSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.Schedule:
        """Fire again from the next slot."""
        return _to_pb(await self._backend.resume(codec.namespace(request.namespace), request.id))

    @mapped
    async def TriggerSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> model_pb2.Job:
        """Enqueue the schedule's job now."""
        namespace = codec.namespace(request.namespace)
        return codec.job_to_pb(await self._backend.trigger_now(namespace, request.id))
