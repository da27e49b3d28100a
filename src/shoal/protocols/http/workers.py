"""Workers: list (the cluster membership), register and leave (for pull workers), kick, drain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shoal.core.auth import Action
from shoal.core.ids import check_chosen_worker_id, server_assigned
from shoal.core.model import WorkerInfo

from ._params import DEFAULT_NS, Namespace, State
from .errors import ERROR_RESPONSES
from .models import WorkerOut, WorkersOut, worker_out

__all__ = ["RegisterIn", "ReleasedOut", "router"]

router = APIRouter(prefix="/workers", tags=["workers"], responses=ERROR_RESPONSES)

WorkerId = Annotated[str, Path(min_length=1, max_length=200, description="The worker's id.")]
_NAME = Field(min_length=1, max_length=200)


class RegisterIn(BaseModel):
    """A pull worker announces itself, so that it is listed and can be kicked or drained."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = _NAME
    queues: list[str] = Field(min_length=1, max_length=100)
    tasks: list[str] = Field(default_factory=list, max_length=1000)
    concurrency: int = Field(1, ge=1, le=100_000)
    language: str = Field("http", max_length=100)
    host: str = Field("", max_length=255)
    pid: int = Field(0, ge=0, le=2**31 - 1)


class ReleasedOut(BaseModel):
    """The jobs whose leases a kick ended."""

    released: list[str]


@router.get("", response_model=WorkersOut, summary="List workers")
async def list_workers(
    state: State,
    namespace: Namespace = DEFAULT_NS,
    all_namespaces: Annotated[bool, Query(alias="all")] = False,
) -> WorkersOut:
    """The connected workers of the namespace (of every namespace with `all=true`)."""
    if all_namespaces:  # every namespace the caller may read
        workers = [
            w
            for w in await state.service.list_workers(None)
            if state.allows(Action.READ, w.namespace)
        ]
    else:
        workers = await state.guard().list_workers(namespace)
    now = state.service.clock.now()
    return WorkersOut(workers=[worker_out(worker, now) for worker in workers])


@router.post("", status_code=201, response_model=WorkerOut, summary="Register a pull worker")
async def register(body: RegisterIn, state: State, namespace: Namespace = DEFAULT_NS) -> WorkerOut:
    """Record a worker's membership; heartbeats that name it keep it fresh."""
    state.require(Action.WORK, namespace)
    check_chosen_worker_id("id", body.id)
    now = state.service.clock.now()
    worker = WorkerInfo(
        id=body.id,
        namespace=namespace,
        queues=tuple(body.queues),
        connected_at=now,
        last_heartbeat=now,
        tasks=tuple(body.tasks),
        concurrency=body.concurrency,
        language=body.language,
        host=body.host,
        pid=body.pid,
    )
    return worker_out(await state.guard().register_worker(worker), now)


@router.delete("/{worker_id}", response_model=ReleasedOut, summary="Leave")
async def leave(
    worker_id: WorkerId, state: State, namespace: Namespace = DEFAULT_NS
) -> ReleasedOut:
    """A pull worker stops: its leases in the namespace end now (its jobs go back to their
    queue). A worker stream or TCP connection does not leave this way: ending one is a kick,
    and needs `manage_workers`.
    """
    if server_assigned(worker_id):
        return await kick(worker_id, state, namespace)
    state.require(Action.WORK, namespace)
    await state.service.find_worker(namespace, worker_id)  # NotFound in another namespace
    jobs = await state.service.worker_gone(worker_id, "left", namespace)
    return ReleasedOut(released=[job.id for job in jobs])


@router.post("/{worker_id}/kick", response_model=ReleasedOut, summary="Kick a worker")
async def kick(worker_id: WorkerId, state: State, namespace: Namespace = DEFAULT_NS) -> ReleasedOut:
    """Disconnect a worker: its leases end and its running jobs are retried elsewhere."""
    jobs = await state.guard().kick_worker(namespace, worker_id)
    await state.audit("worker.kick", namespace, worker_id)
    return ReleasedOut(released=[job.id for job in jobs])


@router.post("/{worker_id}/drain", response_model=WorkerOut, summary="Drain a worker")
async def drain(worker_id: WorkerId, state: State, namespace: Namespace = DEFAULT_NS) -> WorkerOut:
    """Ask a worker to finish what it runs and take nothing more."""
    worker = await state.guard().drain_worker(namespace, worker_id)
    await state.audit("worker.drain", namespace, worker_id)
    return worker_out(worker, state.service.clock.now())
