"""The job state machine as pure functions: each takes a job and returns the job after one move.

Stores apply these (the memory store directly; the SQL stores for moves that need the row's
policy, such as `fail`), so that the rules exist once. A move the table below does not allow
raises `Conflict`; a stale lease raises `LeaseLost`.
"""

from __future__ import annotations

from dataclasses import replace

from shoal.core.errors import Conflict, LeaseLost
from shoal.core.model import WAITING_STATES, Job, JobError, JobState
from shoal.core.retry import RetryPolicy

__all__ = [
    "ALLOWED",
    "LEASE_LOST_ERROR",
    "cancel",
    "check_lease",
    "claim",
    "complete",
    "fail",
    "hand_over",
    "is_claimable",
    "lose_lease",
    "release",
    "renew",
    "retry",
]

S = JobState
#: Every move a job may make; anything else is a `Conflict`.
ALLOWED: dict[JobState, frozenset[JobState]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.RUNNING, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.SCHEDULED, S.QUEUED, S.FAILED, S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset({S.QUEUED}),
    S.CANCELLED: frozenset({S.QUEUED}),
}

#: The error type recorded when a job's last attempt ends because its lease was lost.
LEASE_LOST_ERROR = "LeaseLost"


def _move(job: Job, to: JobState, **changes: object) -> Job:
    if to not in ALLOWED[job.state]:
        raise Conflict(f"job {job.id} is {job.state.value}; it cannot become {to.value}")
    return replace(job, state=to, **changes)  # type: ignore[arg-type]


def _unleased(**changes: object) -> dict[str, object]:
    return {"worker_id": None, "lease_token": None, "lease_expires_at": None, **changes}


def check_lease(job: Job, token: str) -> None:
    """Raise `LeaseLost` unless `token` is the live lease of a running job."""
    if job.state is not S.RUNNING or job.lease_token != token:
        raise LeaseLost(f"lease on job {job.id} is not held (job is {job.state.value})")


def claim(job: Job, worker_id: str, token: str, now: float, lease_ttl: float) -> Job:
    """Lease a waiting job to a worker: a new token, one more attempt."""
    return _move(
        job,
        S.RUNNING,
        worker_id=worker_id,
        lease_token=token,
        lease_expires_at=now + lease_ttl,
        attempt=job.attempt + 1,
        started_at=now,
    )


def renew(job: Job, token: str, now: float, lease_ttl: float) -> Job:
    """Extend a live lease to `lease_ttl` from now, never cut it: a worker that claimed with a
    long lease keeps it through heartbeats that renew by the server's shorter default.
    """
    check_lease(job, token)
    return replace(job, lease_expires_at=max(job.lease_expires_at or now, now + lease_ttl))


def complete(job: Job, token: str, result: bytes | None, now: float) -> Job:
    """The worker finished the job."""
    check_lease(job, token)
    return _move(job, S.SUCCEEDED, **_unleased(result=result, finished_at=now, progress=1.0))


def fail(job: Job, token: str, error: JobError, now: float, retry_delay: float | None) -> Job:
    """The worker's attempt failed: retry after a delay, or fail for good.

    A job whose cancellation was requested ends `cancelled`. Otherwise a retryable error with
    attempts left is scheduled after `retry_delay` (the task asked for it) or the job's policy.
    """
    check_lease(job, token)
    if job.cancel_requested:
        return _move(job, S.CANCELLED, **_unleased(error=error, finished_at=now))
    if error.retryable and job.attempt < job.max_attempts:
        if retry_delay is None:
            retry_delay = RetryPolicy.parse(job.backoff).delay(job.attempt)
        return _move(job, S.SCHEDULED, **_unleased(error=error, run_at=now + retry_delay))
    return _move(job, S.FAILED, **_unleased(error=error, finished_at=now))


def release(job: Job, token: str, now: float) -> Job:
    """The worker gives a job back unstarted (shutting down): the attempt does not count."""
    check_lease(job, token)
    if job.cancel_requested:
        return _move(job, S.CANCELLED, **_unleased(finished_at=now))
    state, run_at = _waiting_again(job, now)
    return _move(job, state, **_unleased(attempt=max(job.attempt - 1, 0), run_at=run_at))


def _waiting_again(job: Job, now: float) -> tuple[S, float]:
    """How a job taken back waits: queued from now, or, when a claim took it ahead of its
    `run_at` (a lookahead), scheduled until then: any worker may take it next, including one
    that asked for no lookahead.
    """
    if job.run_at > now:
        return S.SCHEDULED, job.run_at
    return S.QUEUED, now


def hand_over(job: Job, token: str, worker_id: str) -> Job:
    """A resumed worker's new session takes over a lease it still holds; nothing else moves."""
    check_lease(job, token)
    return replace(job, worker_id=worker_id)


def lose_lease(job: Job, now: float, reason: str) -> Job:
    """The lease ended without an outcome (expired, worker gone, kicked): the attempt counts."""
    if job.state is not S.RUNNING:
        raise Conflict(f"job {job.id} is {job.state.value}, not running")
    if job.cancel_requested:
        return _move(job, S.CANCELLED, **_unleased(finished_at=now))
    error = JobError(type=LEASE_LOST_ERROR, message=reason)
    if job.attempt < job.max_attempts:
        state, run_at = _waiting_again(job, now)
        return _move(job, state, **_unleased(error=error, run_at=run_at))
    return _move(job, S.FAILED, **_unleased(error=error, finished_at=now))


def cancel(job: Job, now: float) -> Job:
    """Cancel a waiting job at once; ask a running one's worker to stop."""
    if job.state in WAITING_STATES:
        return _move(job, S.CANCELLED, finished_at=now)
    if job.state is S.RUNNING:
        return replace(job, cancel_requested=True)
    raise Conflict(f"job {job.id} is already {job.state.value}")


def retry(job: Job, now: float, key_holder: str | None = None) -> Job:
    """Queue a failed or cancelled job again, with a fresh set of attempts.

    `key_holder` is the id of another job that holds `job`'s idempotency key and is not
    finished: the key stands for one active job, so `job` may not become active beside it.
    """
    if job.state not in (S.FAILED, S.CANCELLED):
        raise Conflict(f"job {job.id} is {job.state.value}; only failed or cancelled jobs retry")
    if key_holder is not None:
        raise Conflict(
            f"job {job.id}'s idempotency key {job.idempotency_key!r} is held by job"
            f" {key_holder}, which is not finished"
        )
    return _move(
        job,
        S.QUEUED,
        attempt=0,
        run_at=now,
        result=None,
        error=None,
        started_at=None,
        finished_at=None,
        cancel_requested=False,
        progress=None,
    )


def is_claimable(job: Job, now: float) -> bool:
    """Whether a claim may take this job now."""
    return job.state in WAITING_STATES and job.run_at <= now
