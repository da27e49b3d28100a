"""Pull-worker routes: any language with an HTTP client can be a worker.

A worker fetches jobs (a long poll), runs them, heartbeats its leases, and completes or fails
each job with the lease token it received. A stale token gets 409 `lease_lost`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from shoal.core.ids import check_chosen_worker_id
from shoal.core.model import JobError, LeaseRef
from shoal.core.service import ClaimInput

from ._params import DEFAULT_NS, Namespace, State
from .errors import ERROR_RESPONSES
from .models import JobOut, decode_body, job_out

__all__ = [
    "CompleteIn",
    "FailIn",
    "FetchIn",
    "FetchOut",
    "HeartbeatIn",
    "HeartbeatOut",
    "LeaseIn",
    "ProgressIn",
    "router",
]

router = APIRouter(tags=["pull-worker"], responses=ERROR_RESPONSES)

JobId = Annotated[str, Path(min_length=1, max_length=200, description="The job's id.")]
_NAME = Field(min_length=1, max_length=200)
_TOKEN = Field(min_length=1, max_length=200, description="The token the fetch returned.")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FetchIn(_In):
    """Lease up to `limit` jobs of `queues`, waiting up to `wait` seconds for one."""

    worker_id: str = _NAME
    queues: list[str] = Field(min_length=1, max_length=100)
    limit: int = Field(1, ge=1, le=1000)
    wait: float = Field(0.0, ge=0, le=3600, description="Long-poll seconds (server-capped).")
    tasks: list[str] | None = Field(
        None, max_length=1000, description="Only these tasks (absent or empty: any task)."
    )
    lease_ttl: float | None = Field(None, gt=0, le=86_400, description="Lease seconds.")


class FetchOut(BaseModel):
    """The leased jobs, each with its `lease_token`; empty when none came in time."""

    jobs: list[JobOut]
    drain: bool = Field(default=False, description="The worker was asked to drain: fetch no more.")


class LeaseIn(_In):
    """A lease held by the caller."""

    job_id: str = _NAME
    lease_token: str = _TOKEN


class HeartbeatIn(_In):
    """Renew leases (all of a worker's at once) and, with `worker_id`, its membership."""

    worker_id: str | None = Field(None, min_length=1, max_length=200)
    leases: list[LeaseIn] = Field(default_factory=list, max_length=10_000)
    lease_ttl: float | None = Field(
        None, gt=0, le=86_400, description="Renew by this many seconds (the server's 15 s)."
    )


class HeartbeatOut(BaseModel):
    """Leases renewed, leases lost (stop those jobs), and jobs whose cancel was requested."""

    renewed: list[str]
    lost: list[str]
    cancel_requested: list[str]
    drain: bool = Field(default=False, description="The worker was asked to drain: fetch no more.")


class CompleteIn(_In):
    """The job succeeded, with an optional result (JSON, or base64 for other bytes)."""

    lease_token: str = _TOKEN
    result: Any = None
    result_base64: str | None = None


class ErrorIn(_In):
    """Why an attempt failed."""

    type: str = Field(min_length=1, max_length=200)
    message: str = Field("", max_length=100_000)
    traceback: str = Field("", max_length=1_000_000)
    retryable: bool = True


class FailIn(_In):
    """The attempt failed; the job retries per its policy (or after `retry_delay` seconds)."""

    lease_token: str = _TOKEN
    error: ErrorIn
    retry_delay: float | None = Field(None, ge=0, le=1e9)


class ReleaseIn(_In):
    """Give an unstarted job back; the attempt does not count."""

    lease_token: str = _TOKEN


class ProgressIn(_In):
    """How far a running job is, from 0 to 1."""

    lease_token: str = _TOKEN
    progress: float = Field(ge=0, le=1)


@router.post("/pull/fetch", response_model=FetchOut, summary="Fetch jobs (long poll)")
async def fetch(
    body: FetchIn, request: Request, state: State, namespace: Namespace = DEFAULT_NS
) -> FetchOut:
    """Lease jobs; each comes with the `lease_token` its heartbeat, complete and fail carry.
    A worker asked to drain gets no more jobs, and `drain: true`.
    """
    if (namespace, body.worker_id) in state.recorder.draining:
        return FetchOut(jobs=[], drain=True)
    jobs = await state.guard().claim(
        ClaimInput(
            worker_id=check_chosen_worker_id("worker_id", body.worker_id),
            queues=tuple(body.queues),
            namespace=namespace,
            limit=body.limit,
            wait=min(body.wait, state.settings.max_wait),
            # Empty means any task, as in gRPC's Fetch (a worker registered without tasks
            # holds []); the service reads an empty tuple as "none of them".
            tasks=tuple(body.tasks or ()) or None,
            lease_ttl=body.lease_ttl,
        )
    )
    if jobs and await request.is_disconnected():
        # The worker gave up waiting: give the jobs back now rather than when the leases expire.
        await state.guard().release([job.lease for job in jobs])
        return FetchOut(jobs=[])
    return FetchOut(jobs=[job_out(job, with_lease=True) for job in jobs])


@router.post("/pull/heartbeat", response_model=HeartbeatOut, summary="Renew leases")
async def heartbeat(
    body: HeartbeatIn, state: State, namespace: Namespace = DEFAULT_NS
) -> HeartbeatOut:
    """Renew the leases (a lease is never cut: one fetched for longer keeps its end); those
    reported `lost` are no longer the caller's to finish. `worker_id` refreshes that worker's
    record in the namespace.
    """
    leases = [LeaseRef(lease.job_id, lease.lease_token) for lease in body.leases]
    result = await state.guard().heartbeat(
        leases, body.worker_id, lease_ttl=body.lease_ttl, namespace=namespace
    )
    return HeartbeatOut(
        renewed=list(result.renewed),
        lost=list(result.lost),
        cancel_requested=list(result.cancel_requested),
        drain=(namespace, body.worker_id) in state.recorder.draining,
    )


@router.post("/jobs/{job_id}/complete", response_model=JobOut, summary="Complete a job")
async def complete(job_id: JobId, body: CompleteIn, state: State) -> JobOut:
    """The job succeeded. 409 `lease_lost` when the token is stale."""
    result: bytes | None = None
    if body.result_base64 is not None or "result" in body.model_fields_set:
        result, _ = decode_body(
            body.result,
            body.result_base64,
            None,
            field="result_base64",
            given="result" in body.model_fields_set,
        )
    job = await state.guard().complete(LeaseRef(job_id, body.lease_token), result)
    return job_out(job)


@router.post("/jobs/{job_id}/fail", response_model=JobOut, summary="Fail an attempt")
async def fail(job_id: JobId, body: FailIn, state: State) -> JobOut:
    """The attempt failed: the job is retried later or, out of attempts, fails."""
    e = body.error
    error = JobError(type=e.type, message=e.message, traceback=e.traceback, retryable=e.retryable)
    job = await state.guard().fail(LeaseRef(job_id, body.lease_token), error, body.retry_delay)
    return job_out(job)


@router.post("/jobs/{job_id}/release", response_model=FetchOut, summary="Give a job back")
async def release(job_id: JobId, body: ReleaseIn, state: State) -> FetchOut:
    """Give back a job the worker will not run; a stale lease is ignored (empty answer)."""
    jobs = await state.guard().release([LeaseRef(job_id, body.lease_token)])
    return FetchOut(jobs=[job_out(job) for job in jobs])


@router.post(
    "/jobs/{job_id}/progress", status_code=204, response_class=Response, summary="Report progress"
)
async def progress(job_id: JobId, body: ProgressIn, state: State) -> Response:
    """Record how far the running job is."""
    await state.guard().set_progress(LeaseRef(job_id, body.lease_token), body.progress)
    return Response(status_code=204)
