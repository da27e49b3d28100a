"""Jobs: enqueue one or many, get, list (filters and keyset pages), wait for the result,
cancel, retry, delete.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from shoal.core.model import JobQuery, JobState

from ._params import DEFAULT_NS, Namespace, State
from .errors import ERROR_RESPONSES
from .models import (
    EnqueueIn,
    EnqueueManyIn,
    EnqueueManyOut,
    EnqueueOut,
    JobOut,
    JobPageOut,
    job_out,
)

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

JobId = Annotated[str, Path(min_length=1, max_length=200, description="The job's id.")]


@router.post("", status_code=201, response_model=EnqueueOut, summary="Enqueue a job")
async def enqueue(body: EnqueueIn, state: State, namespace: Namespace = DEFAULT_NS) -> EnqueueOut:
    """Store one job. With an `idempotency_key` that matches a live job, that job is returned
    with `created: false`.
    """
    enqueued = await state.guard().enqueue(body.to_request(namespace))
    return EnqueueOut(job=job_out(enqueued.job), created=enqueued.created)


@router.post("/batch", status_code=201, response_model=EnqueueManyOut, summary="Enqueue many jobs")
async def enqueue_many(
    body: EnqueueManyIn, state: State, namespace: Namespace = DEFAULT_NS
) -> EnqueueManyOut:
    """Store several jobs in one transaction: all of them, or none if any is invalid."""
    requests = [
        item.to_request(namespace, field_prefix=f"jobs.{index}.")
        for index, item in enumerate(body.jobs)
    ]
    results = await state.guard().enqueue_many(requests)
    return EnqueueManyOut(
        results=[EnqueueOut(job=job_out(r.job), created=r.created) for r in results]
    )


@router.get("", response_model=JobPageOut, summary="List jobs")
async def list_jobs(
    state: State,
    namespace: Namespace = DEFAULT_NS,
    queue: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    job_state: Annotated[JobState | None, Query(alias="state")] = None,
    task: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    created_after: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    created_before: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, description="At most `limits.max_page` (1000 by default).")
    ] = 50,
) -> JobPageOut:
    """Jobs newest first, one keyset page at a time: every page costs the same, however deep."""
    page = await state.guard().list_jobs(
        JobQuery(
            namespace=namespace,
            queue=queue,
            state=job_state,
            task=task,
            tag=tag,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor or None,
            limit=limit,
        )
    )
    return JobPageOut(jobs=[job_out(job) for job in page.jobs], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobOut, summary="Get a job")
async def get_job(job_id: JobId, state: State, namespace: Namespace = DEFAULT_NS) -> JobOut:
    """The job, with its payload, result or error."""
    return job_out(await state.guard().get(namespace, job_id))


@router.get("/{job_id}/result", response_model=JobOut, summary="Wait for a job to finish")
async def wait_for_result(
    job_id: JobId,
    state: State,
    namespace: Namespace = DEFAULT_NS,
    wait: Annotated[
        float, Query(ge=0, le=3600, description="Seconds to wait for the job to finish.")
    ] = 0.0,
) -> JobOut:
    """The job once it is finished (succeeded, failed or cancelled), or as it is when `wait`
    seconds have passed (a long poll; capped by the server's `max_wait`). Look at `state`.
    """
    timeout = min(wait, state.settings.max_wait)
    return job_out(await state.guard().wait_for(namespace, job_id, timeout))


@router.post("/{job_id}/cancel", response_model=JobOut, summary="Cancel a job")
async def cancel(job_id: JobId, state: State, namespace: Namespace = DEFAULT_NS) -> JobOut:
    """Cancel a waiting job at once; a running one gets `cancel_requested` and its worker is
    told. 409 for a finished job.
    """
    return job_out(await state.guard().cancel(namespace, job_id))


@router.post("/{job_id}/retry", response_model=JobOut, summary="Retry a job")
async def retry(job_id: JobId, state: State, namespace: Namespace = DEFAULT_NS) -> JobOut:
    """Queue a failed or cancelled job again. 409 in any other state."""
    return job_out(await state.guard().retry(namespace, job_id))


@router.delete("/{job_id}", status_code=204, response_class=Response, summary="Delete a job")
async def delete(job_id: JobId, state: State, namespace: Namespace = DEFAULT_NS) -> Response:
    """Remove a job that is not running (409 while it runs)."""
    await state.guard().delete(namespace, job_id)
    return Response(status_code=204)
