"""From shoal's model to Jobatator's vocabulary: job states, attempts, stats, error codes.

Jobatator knows four states. A shoal job waiting for a retry (an error recorded, not yet
running) is `errored`, because upstream re-dispatches failed jobs with that state and its
clients expect to see it. A cancelled job did not exist upstream (DELETE_JOB removed it); it
shows as `errored`, the closest "did not succeed".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from shoal.core.errors import (
    Conflict,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ShoalError,
    StorageError,
    Unauthenticated,
    Unavailable,
)
from shoal.core.model import Job, JobState, QueueStats
from shoal.core.ports import HeartbeatResult
from shoal.protocols.tcp._goshapes import GoJob, go_job, go_time
from shoal.protocols.tcp.commands import ErrorCode, JobatatorState


class GoStats(TypedDict):
    Queue: str
    Total: int
    ByState: dict[str, int]
    ByType: dict[str, dict[str, int]]


class GoHeartbeat(TypedDict):
    Renewed: list[str]
    Lost: list[str]
    Cancel: list[str]


_STATE = {
    JobState.RUNNING: JobatatorState.IN_PROGRESS,
    JobState.SUCCEEDED: JobatatorState.DONE,
    JobState.FAILED: JobatatorState.ERRORED,
    JobState.CANCELLED: JobatatorState.ERRORED,
}


def jobatator_state(job: Job) -> JobatatorState:
    """The state Jobatator would show for this job."""
    state = _STATE.get(job.state)
    if state is not None:
        return state
    return JobatatorState.ERRORED if job.error is not None else JobatatorState.PENDING


def jobatator_attempts(job: Job) -> int:
    """Jobatator counts failed attempts; shoal counts claims, the current one included."""
    current = 1 if job.state in (JobState.RUNNING, JobState.SUCCEEDED) else 0
    return max(0, job.attempt - current)


def go_job_from(job: Job) -> GoJob:
    """A shoal job as a Jobatator job object (the payload read as UTF-8 text)."""
    return go_job(
        id=job.id,
        state=jobatator_state(job),
        type=job.task,
        payload=job.payload.decode("utf-8", "replace"),
        attempts=jobatator_attempts(job),
        started_at=go_time(job.started_at),
        ended_at=go_time(job.finished_at),
    )


def _by_state(counts: Mapping[JobState, int]) -> dict[str, int]:
    return {state.value: counts.get(state, 0) for state in JobState}


def go_stats(queue: str, stats: QueueStats) -> GoStats:
    """The `STATS` object: every shoal state counted, overall and per job type."""
    return {
        "Queue": queue,
        "Total": stats.total,
        "ByState": _by_state(stats.by_state),
        "ByType": {task: _by_state(counts) for task, counts in sorted(stats.by_task.items())},
    }


def go_heartbeat(result: HeartbeatResult) -> GoHeartbeat:
    """The `HEARTBEAT` object: leases renewed, leases lost, cancellations requested."""
    return {
        "Renewed": list(result.renewed),
        "Lost": list(result.lost),
        "Cancel": list(result.cancel_requested),
    }


def error_reply_code(
    error: ShoalError,
    *,
    not_found: ErrorCode = ErrorCode.UNKNOWN_JOB,
    conflict: ErrorCode = ErrorCode.JOB_FINISHED,
) -> tuple[ErrorCode, str]:
    """The `Err:` code (and detail) for a service error.

    `not_found` and `conflict` depend on what the command was about (a job, a queue). Only
    `InvalidArgument` carries its message as detail: other messages may name internals.
    """
    if isinstance(error, NotFound):
        return not_found, ""
    if isinstance(error, InvalidArgument):
        return ErrorCode.INVALID_ARGUMENT, error.message
    simple: tuple[tuple[type[ShoalError], ErrorCode], ...] = (
        (Conflict, conflict),
        (LeaseLost, ErrorCode.LEASE_LOST),
        (Unauthenticated, ErrorCode.NOT_LOGGED),
        (PermissionDenied, ErrorCode.FORBIDDEN),
        (ResourceExhausted, ErrorCode.RESOURCE_EXHAUSTED),
        (Unavailable, ErrorCode.UNAVAILABLE),
        (StorageError, ErrorCode.UNAVAILABLE),  # worth a retry, as on HTTP and gRPC
    )
    for cls, code in simple:
        if isinstance(error, cls):
            return code, ""
    return ErrorCode.INTERNAL, ""
