"""`shoal.v1.ScheduleService`: schedules over gRPC, through core's `ScheduleApi` port (the
composition root hands over the scheduler's implementation).
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from shoal.core.auth import ALL_NAMESPACES, Action
from shoal.core.model import DEFAULT_QUEUE
from shoal.core.schedules import GuardedSchedules, ScheduleApi, ScheduleInput, ScheduleView
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import Callers
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.shoal.v1 import model_pb2, schedules_pb2, schedules_pb2_grpc

__all__ = ["ScheduleServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


def _input(spec: schedules_pb2.ScheduleSpec) -> ScheduleInput:
    has = spec.HasField
    trigger = spec.WhichOneof("trigger")
    payload, content_type = codec.payload_from_pb(spec.payload, spec.content_type)
    return ScheduleInput(
        task=spec.task,
        namespace=codec.namespace(spec.namespace),
        queue=spec.queue or DEFAULT_QUEUE,
        id=spec.id or None,
        every_ms=spec.every_ms if trigger == "every_ms" else None,
        cron=spec.cron if trigger == "cron" else None,
        timezone=spec.timezone or "UTC",
        at=spec.at if trigger == "at" else None,
        payload=payload,
        content_type=content_type,
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
    spec = schedules_pb2.ScheduleSpec(
        namespace=view.namespace,
        id=view.id,
        queue=view.queue,
        task=view.task,
        timezone=view.timezone,
        payload=view.payload,
        content_type=view.content_type,
        priority=view.priority,
        tags=view.tags,
        overlap=view.overlap.value,
        catch_up=view.catch_up.value,
        catch_up_limit=view.catch_up_limit,
        jitter_ms=view.jitter_ms,
        paused=view.paused,
    )
    optional = {
        "every_ms": view.every_ms,
        "cron": view.cron,
        "at": view.at,
        "max_attempts": view.max_attempts,
        "timeout": view.timeout,
        "start_at": view.start_at,
        "end_at": view.end_at,
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
    """Each method decodes, calls one `ScheduleApi` method, and encodes."""

    def __init__(self, schedules: ScheduleApi, callers: Callers) -> None:
        self._api = schedules
        self._callers = callers

    @property
    def _schedules(self) -> GuardedSchedules:
        return self._callers.schedules(self._api)

    async def _audit(self, action: str, namespace: str, schedule_id: str) -> None:
        await self._callers.audit(f"schedule.{action}", namespace, schedule_id)

    @mapped
    async def CreateSchedule(
        self, request: schedules_pb2.ScheduleSpec, context: Context
    ) -> schedules_pb2.Schedule:
        """Create a schedule."""
        view = await self._schedules.add(_input(request))
        await self._audit("create", view.namespace, view.id)
        return _to_pb(view)

    @mapped
    async def PutSchedule(
        self, request: schedules_pb2.ScheduleSpec, context: Context
    ) -> schedules_pb2.Schedule:
        """Create or replace a schedule by id."""
        view = await self._schedules.put(_input(request))
        await self._audit("put", view.namespace, view.id)
        return _to_pb(view)

    @mapped
    async def GetSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.Schedule:
        """One schedule."""
        return _to_pb(await self._schedules.get(codec.namespace(request.namespace), request.id))

    @mapped
    async def ListSchedules(
        self, request: schedules_pb2.ListSchedulesRequest, context: Context
    ) -> schedules_pb2.ListSchedulesResponse:
        """Schedules of a namespace, or of all."""
        if request.namespace or not self._callers.allows(Action.READ, ALL_NAMESPACES):
            views = await self._schedules.list(codec.namespace(request.namespace))
        else:
            views = await self._api.list(None)
        return schedules_pb2.ListSchedulesResponse(schedules=[_to_pb(view) for view in views])

    @mapped
    async def DeleteSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.DeleteScheduleResponse:
        """Delete a schedule."""
        namespace = codec.namespace(request.namespace)
        await self._schedules.remove(namespace, request.id)
        await self._audit("delete", namespace, request.id)
        return schedules_pb2.DeleteScheduleResponse()

    @mapped
    async def PauseSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.Schedule:
        """Stop firing."""
        namespace = codec.namespace(request.namespace)
        view = await self._schedules.pause(namespace, request.id)
        await self._audit("pause", namespace, request.id)
        return _to_pb(view)

    @mapped
    async def ResumeSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> schedules_pb2.Schedule:
        """Fire again from the next slot."""
        namespace = codec.namespace(request.namespace)
        view = await self._schedules.resume(namespace, request.id)
        await self._audit("resume", namespace, request.id)
        return _to_pb(view)

    @mapped
    async def TriggerSchedule(
        self, request: schedules_pb2.ScheduleRef, context: Context
    ) -> model_pb2.Job:
        """Enqueue the schedule's job now."""
        namespace = codec.namespace(request.namespace)
        enqueued = await self._schedules.trigger_now(namespace, request.id)
        await self._audit("trigger", namespace, request.id)
        return codec.job_to_pb(enqueued.job)
