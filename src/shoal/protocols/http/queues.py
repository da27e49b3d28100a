"""Queues: list with counts, statistics by state and task, pause, resume, purge, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from shoal.core.auth import Action

from ._params import DEFAULT_NS, Namespace, State
from .errors import ERROR_RESPONSES
from .models import DeletedOut, QueuesOut, StatsOut, queue_out, stats_out

__all__ = ["PausedOut", "router"]

router = APIRouter(tags=["queues"], responses=ERROR_RESPONSES)

QueueName = Annotated[str, Path(min_length=1, max_length=200, description="The queue's name.")]


class PausedOut(BaseModel):
    """A queue's pause flag after a pause or resume."""

    queue: str
    paused: bool


@router.get("/queues", response_model=QueuesOut, summary="List queues")
async def list_queues(state: State, namespace: Namespace = DEFAULT_NS) -> QueuesOut:
    """Every queue of the namespace that holds jobs or is paused, with its counts by state."""
    state.require(Action.READ, namespace)
    queues = await state.counts.get(namespace)
    return QueuesOut(queues=[queue_out(queue) for queue in queues])


@router.get("/stats", response_model=StatsOut, summary="Namespace statistics")
async def namespace_stats(state: State, namespace: Namespace = DEFAULT_NS) -> StatsOut:
    """Counts by state and by task over every queue of the namespace."""
    return stats_out(await state.guard().stats(namespace))


@router.get("/queues/{queue}/stats", response_model=StatsOut, summary="Queue statistics")
async def queue_stats(
    queue: QueueName, state: State, namespace: Namespace = DEFAULT_NS
) -> StatsOut:
    """Counts by state and by task of one queue."""
    return stats_out(await state.guard().stats(namespace, queue))


@router.post("/queues/{queue}/pause", response_model=PausedOut, summary="Pause a queue")
async def pause(queue: QueueName, state: State, namespace: Namespace = DEFAULT_NS) -> PausedOut:
    """Stop handing out the queue's jobs; enqueues still land. Idempotent."""
    await state.guard().pause_queue(namespace, queue)
    return PausedOut(queue=queue, paused=True)


@router.post("/queues/{queue}/resume", response_model=PausedOut, summary="Resume a queue")
async def resume(queue: QueueName, state: State, namespace: Namespace = DEFAULT_NS) -> PausedOut:
    """Hand out the queue's jobs again. Idempotent."""
    await state.guard().resume_queue(namespace, queue)
    return PausedOut(queue=queue, paused=False)


@router.post("/queues/{queue}/purge", response_model=DeletedOut, summary="Purge a queue")
async def purge(queue: QueueName, state: State, namespace: Namespace = DEFAULT_NS) -> DeletedOut:
    """Delete the queue's waiting (queued and scheduled) jobs."""
    deleted = await state.guard().purge_queue(namespace, queue)
    await state.audit("queue.purge", namespace, queue)
    return DeletedOut(deleted=deleted)


@router.delete("/queues/{queue}", response_model=DeletedOut, summary="Delete a queue")
async def delete(queue: QueueName, state: State, namespace: Namespace = DEFAULT_NS) -> DeletedOut:
    """Delete the queue and all its jobs; 409 while any of them runs."""
    deleted = await state.guard().delete_queue(namespace, queue)
    await state.audit("queue.delete", namespace, queue)
    return DeletedOut(deleted=deleted)
