"""Schedules: create, put, get, list, delete, pause, resume, trigger now, backfill, next fires."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from shoal.core.errors import Unavailable
from shoal.core.schedules import GuardedSchedules

from ._params import DEFAULT_NS, Namespace, State
from ._schedule_models import (
    BackfillIn,
    BackfillOut,
    ScheduleIn,
    ScheduleOut,
    SchedulesOut,
    UpcomingOut,
)
from .errors import ERROR_RESPONSES
from .models import EnqueueOut, job_out
from .state import HttpState

__all__ = ["router"]

router = APIRouter(prefix="/schedules", tags=["schedules"], responses=ERROR_RESPONSES)

ScheduleId = Annotated[str, Path(min_length=1, max_length=200, description="The schedule's id.")]


def _api(state: HttpState) -> GuardedSchedules:
    if state.schedules is None:
        raise Unavailable("this server runs no scheduler")
    return state.guard_schedules(state.schedules)  # the caller's rights, changes audited


@router.get("", response_model=SchedulesOut, summary="List schedules")
async def list_schedules(state: State, namespace: Namespace = DEFAULT_NS) -> SchedulesOut:
    """The namespace's schedules by id, with their next fire."""
    views = await _api(state).list(namespace)
    return SchedulesOut(schedules=[ScheduleOut.of(view) for view in views])


@router.post("", status_code=201, response_model=ScheduleOut, summary="Create a schedule")
async def create(body: ScheduleIn, state: State, namespace: Namespace = DEFAULT_NS) -> ScheduleOut:
    """Create a schedule; 409 if its id is taken, 422 naming the field for a bad definition."""
    return ScheduleOut.of(await _api(state).add(body.to_input(namespace)))


@router.put("/{schedule_id}", response_model=ScheduleOut, summary="Create or replace a schedule")
async def put(
    schedule_id: ScheduleId, body: ScheduleIn, state: State, namespace: Namespace = DEFAULT_NS
) -> ScheduleOut:
    """Create the schedule with this id, or replace its definition (its firing history stays)."""
    return ScheduleOut.of(await _api(state).put(body.to_input(namespace, schedule_id)))


@router.get("/{schedule_id}", response_model=ScheduleOut, summary="Get a schedule")
async def get(
    schedule_id: ScheduleId, state: State, namespace: Namespace = DEFAULT_NS
) -> ScheduleOut:
    """The schedule."""
    return ScheduleOut.of(await _api(state).get(namespace, schedule_id))


@router.delete(
    "/{schedule_id}", status_code=204, response_class=Response, summary="Delete a schedule"
)
async def delete(
    schedule_id: ScheduleId, state: State, namespace: Namespace = DEFAULT_NS
) -> Response:
    """Delete the schedule; the jobs it enqueued stay."""
    await _api(state).remove(namespace, schedule_id)
    return Response(status_code=204)


@router.post("/{schedule_id}/pause", response_model=ScheduleOut, summary="Pause a schedule")
async def pause(
    schedule_id: ScheduleId, state: State, namespace: Namespace = DEFAULT_NS
) -> ScheduleOut:
    """Stop firing (idempotent)."""
    return ScheduleOut.of(await _api(state).pause(namespace, schedule_id))


@router.post("/{schedule_id}/resume", response_model=ScheduleOut, summary="Resume a schedule")
async def resume(
    schedule_id: ScheduleId, state: State, namespace: Namespace = DEFAULT_NS
) -> ScheduleOut:
    """Fire again from the next slot; the slots missed while paused are not caught up."""
    return ScheduleOut.of(await _api(state).resume(namespace, schedule_id))


@router.post(
    "/{schedule_id}/trigger", status_code=201, response_model=EnqueueOut, summary="Fire now"
)
async def trigger(
    schedule_id: ScheduleId, state: State, namespace: Namespace = DEFAULT_NS
) -> EnqueueOut:
    """Enqueue the schedule's job now, outside its slots (even while paused)."""
    enqueued = await _api(state).trigger_now(namespace, schedule_id)
    return EnqueueOut(job=job_out(enqueued.job), created=enqueued.created)


@router.post("/{schedule_id}/backfill", response_model=BackfillOut, summary="Backfill slots")
async def backfill(
    schedule_id: ScheduleId, body: BackfillIn, state: State, namespace: Namespace = DEFAULT_NS
) -> BackfillOut:
    """One job for every slot in [start, end] that has none yet (at most 10,000 slots)."""
    results = await _api(state).backfill(namespace, schedule_id, body.start, body.end)
    return BackfillOut(results=[EnqueueOut(job=job_out(r.job), created=r.created) for r in results])


@router.get("/{schedule_id}/upcoming", response_model=UpcomingOut, summary="Next fires")
async def upcoming(
    schedule_id: ScheduleId,
    state: State,
    namespace: Namespace = DEFAULT_NS,
    count: Annotated[int, Query(ge=1, le=100)] = 5,
) -> UpcomingOut:
    """The next `count` fire times."""
    return UpcomingOut(fires=await _api(state).upcoming(namespace, schedule_id, count))
