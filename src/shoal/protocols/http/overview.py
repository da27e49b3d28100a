"""Namespaces, the dashboard's overview (counts, workers, charts) and `/healthz`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from shoal.core.auth import Action
from shoal.core.model import JobState, WorkerState

from ._params import DEFAULT_NS, Namespace, State
from .errors import ERROR_RESPONSES
from .models import ErrorBody, NamespacesOut, QueueOut, queue_out

__all__ = ["HealthOut", "OverviewOut", "PointOut", "api_router", "health_router"]

api_router = APIRouter(tags=["overview"], responses=ERROR_RESPONSES)
health_router = APIRouter(
    tags=["health"], responses={503: {"model": ErrorBody, "description": "The store fails."}}
)


class PointOut(BaseModel):
    """One slot of the charts: jobs that moved in it, and mean latencies (seconds)."""

    at: float
    enqueued: int
    started: int
    succeeded: int
    failed: int
    wait_avg: float | None
    run_avg: float | None


class OverviewOut(BaseModel):
    """Everything the overview page shows."""

    namespace: str
    now: float
    counts: dict[JobState, int]
    total: int
    queues: list[QueueOut]
    paused_queues: int
    workers: dict[str, int]
    bucket_seconds: float
    points: list[PointOut]


class HealthOut(BaseModel):
    """The server answers and its store works."""

    status: str


@api_router.get("/namespaces", response_model=NamespacesOut, summary="List namespaces")
async def namespaces(state: State) -> NamespacesOut:
    """Configured namespaces, those of connected workers, and those seen since start."""
    known = set(await state.known_namespaces())
    known |= {worker.namespace for worker in await state.service.list_workers(None)}
    known |= {namespace.name for namespace in await state.auth.store.list_namespaces()}
    return NamespacesOut(namespaces=sorted(n for n in known if state.allows(Action.READ, n)))


@api_router.get("/overview", response_model=OverviewOut, summary="Overview of a namespace")
async def overview(
    state: State,
    namespace: Namespace = DEFAULT_NS,
    window: Annotated[float, Query(gt=0, le=86_400, description="Chart seconds.")] = 900.0,
) -> OverviewOut:
    """Counts by state, the queues, workers by state, and throughput and latency over `window`
    (one store scan for all the counts, so the page stays fast with millions of jobs).
    """
    state.require(Action.READ, namespace)
    service = state.service
    now = service.clock.now()
    queues = await state.counts.get(namespace)
    counts = dict.fromkeys(JobState, 0)
    for queue in queues:
        for job_state, count in queue.counts.items():
            counts[job_state] += count
    workers = {worker_state.value: 0 for worker_state in WorkerState}
    for worker in await service.list_workers(namespace):
        workers[worker.state.value] += 1
    recorder = state.recorder
    points = [
        PointOut(
            at=b.start,
            enqueued=b.enqueued,
            started=b.started,
            succeeded=b.succeeded,
            failed=b.failed,
            wait_avg=b.wait_sum / b.wait_count if b.wait_count else None,
            run_avg=b.run_sum / b.run_count if b.run_count else None,
        )
        for b in recorder.series(namespace, now - window)
    ]
    return OverviewOut(
        namespace=namespace,
        now=now,
        counts=counts,
        total=sum(counts.values()),
        queues=[queue_out(queue) for queue in queues],
        paused_queues=sum(1 for queue in queues if queue.paused),
        workers=workers,
        bucket_seconds=recorder.bucket_seconds,
        points=points,
    )


@health_router.get("/healthz", response_model=HealthOut, summary="Health check")
async def healthz(state: State) -> HealthOut:
    """200 while the store answers; 503 `unavailable` when it does not."""
    await state.service.list_workers(DEFAULT_NS)
    return HealthOut(status="ok")
