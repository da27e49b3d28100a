from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shoal.core.model import Job, JobError, JobId, JobState, WorkerInfo, WorkerState
from shoal.core.ports import ScheduleRecord

#: Columns of shoal_jobs in the order `job_values` gives them.
JOB_COLUMNS: tuple[str, ...] = (
    "id",
    "namespace",
    "queue",
    "task",
    "payload",
    "content_type",
    "state",
    "created_at",
    "run_at",
    "priority",
    "attempt",
    "max_attempts",
    "backoff",
    "timeout",
    "idempotency_key",
    "tags",
    "result",
    "error_type",
    "error_message",
    "error_traceback",
    "error_retryable",
    "started_at",
    "finished_at",
    "worker_id",
    "lease_token",
    "lease_expires_at",
    "cancel_requested",
    "progress",
    "parent_id",
    "schedule_id",
)

#: Columns a move may change (everything but identity and what enqueue fixed for good).
_MUTABLE = (
    "state",
    "run_at",
    "attempt",
    "result",
    "error_type",
    "error_message",
    "error_traceback",
    "error_retryable",
    "started_at",
    "finished_at",
    "worker_id",
    "lease_token",
    "lease_expires_at",
    "cancel_requested",
    "progress",
)

#: Writes a job's mutable columns back: $1 is the id, then `_MUTABLE` in order.
UPDATE_JOB = "UPDATE shoal_jobs SET {} WHERE id = $1".format(
    ", ".join(f"{name} = ${i}" for i, name in enumerate(_MUTABLE, start=2))
)


def job_values(job: Job) -> tuple[Any, ...]:
    """A job as a row of `JOB_COLUMNS`."""
    error = job.error
    return (
        job.id,
        job.namespace,
        job.queue,
        job.task,
        job.payload,
        job.content_type,
        job.state.value,
        job.created_at,
        job.run_at,
        job.priority,
        job.attempt,
        job.max_attempts,
        job.backoff,
        job.timeout,
        job.idempotency_key,
        list(job.tags),
        job.result,
        error.type if error else None,
        error.message if error else None,
        error.traceback if error else None,
        error.retryable if error else None,
        job.started_at,
        job.finished_at,
        job.worker_id,
        job.lease_token,
        job.lease_expires_at,
        job.cancel_requested,
        job.progress,
        job.parent_id,
        job.schedule_id,
    )


def update_values(job: Job) -> tuple[Any, ...]:
    """Arguments of `UPDATE_JOB` for this job."""
    row = dict(zip(JOB_COLUMNS, job_values(job), strict=True))
    return (job.id, *(row[name] for name in _MUTABLE))


def to_job(row: Mapping[str, Any]) -> Job:
    """A shoal_jobs row as a `Job`."""
    error = None
    if row["error_type"] is not None:
        error = JobError(
            type=row["error_type"],
            message=row["error_message"],
            traceback=row["error_traceback"],
            retryable=row["error_retryable"],
        )
    return Job(
        id=JobId(row["id"]),
        namespace=row["namespace"],
        queue=row["queue"],
        task=row["task"],
        payload=row["payload"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        run_at=row["run_at"],
        content_type=row["content_type"],
        priority=row["priority"],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        backoff=row["backoff"],
        timeout=row["timeout"],
        idempotency_key=row["idempotency_key"],
        tags=tuple(row["tags"]),
        result=row["result"],
        error=error,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker_id=row["worker_id"],
        lease_token=row["lease_token"],
        lease_expires_at=row["lease_expires_at"],
        cancel_requested=row["cancel_requested"],
        progress=row["progress"],
        parent_id=row["parent_id"],
        schedule_id=row["schedule_id"],
    )


def claim_order(job: Job) -> tuple[int, float, str]:
    """The order claims hand jobs out in: priority (high first), run_at, id."""
    return (-job.priority, job.run_at, job.id)


def to_worker(row: Mapping[str, Any]) -> WorkerInfo:
    """A shoal_workers row (plus its `running` count) as a `WorkerInfo`."""
    return WorkerInfo(
        id=row["id"],
        namespace=row["namespace"],
        queues=tuple(row["queues"]),
        connected_at=row["connected_at"],
        last_heartbeat=row["last_heartbeat"],
        state=WorkerState(row["state"]),
        tasks=tuple(row["tasks"]),
        concurrency=row["concurrency"],
        language=row["language"],
        host=row["host"],
        pid=row["pid"],
        running=row["running"],
    )


def to_schedule(row: Mapping[str, Any]) -> ScheduleRecord:
    """A shoal_schedules row as a `ScheduleRecord`."""
    return ScheduleRecord(
        namespace=row["namespace"],
        id=row["id"],
        spec=row["spec"],
        paused=row["paused"],
        next_fire_at=row["next_fire_at"],
        last_fire_at=row["last_fire_at"],
        created_at=row["created_at"],
    )
