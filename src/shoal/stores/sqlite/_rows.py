"""Conversions between model objects and SQLite rows.

`JOB_COLUMNS` lists the columns in the order of `Job`'s fields (the four error columns stand in
for `error`), so a row becomes a `Job` positionally: building it by keyword costs twice as much,
and this runs for every job a claim or a listing returns.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from shoal.core.model import Job, JobError, JobId, JobState, WorkerInfo, WorkerState
from shoal.core.ports import ScheduleRecord

JOB_COLUMNS = (
    "id, namespace, queue, task, payload, state, created_at, run_at, content_type, priority,"
    " attempt, max_attempts, backoff, timeout, idempotency_key, tags, result,"
    " error_type, error_message, error_traceback, error_retryable,"
    " started_at, finished_at, worker_id, lease_token, lease_expires_at, cancel_requested,"
    " progress, parent_id, schedule_id"
)

INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * 30)})"
#: Rows per multi-row INSERT (30 parameters each; SQLite allows 32,766 per statement).
INSERT_CHUNK = 100


@functools.cache
def insert_jobs_sql(rows: int) -> str:
    """One INSERT for `rows` jobs: the writer releases the GIL once per statement, not per row."""
    row = f"({', '.join('?' * 30)})"
    return f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES {', '.join([row] * rows)}"


#: Every column a state move may change, written back by id.
UPDATE_JOB = (
    "UPDATE jobs SET state = ?, run_at = ?, attempt = ?, result = ?, error_type = ?,"
    " error_message = ?, error_traceback = ?, error_retryable = ?, started_at = ?,"
    " finished_at = ?, worker_id = ?, lease_token = ?, lease_expires_at = ?,"
    " cancel_requested = ?, progress = ? WHERE id = ?"
)

_STATES = {state.value: state for state in JobState}
_VALUES = {state: state.value for state in JobState}
#: A job as a list of column values in `JOB_COLUMNS` order.
Row = list[Any]


def job_params(job: Job) -> tuple[Any, ...]:
    error = job.error
    return (
        job.id,
        job.namespace,
        job.queue,
        job.task,
        job.payload,
        _VALUES[job.state],
        job.created_at,
        job.run_at,
        job.content_type,
        job.priority,
        job.attempt,
        job.max_attempts,
        job.backoff,
        job.timeout,
        job.idempotency_key,
        json.dumps(job.tags) if job.tags else None,
        job.result,
        *(_error_params(error) if error is not None else (None, None, None, None)),
        job.started_at,
        job.finished_at,
        job.worker_id,
        job.lease_token,
        job.lease_expires_at,
        int(job.cancel_requested),
        job.progress,
        job.parent_id,
        job.schedule_id,
    )


def update_params(job: Job) -> tuple[Any, ...]:
    error = job.error
    return (
        _VALUES[job.state],
        job.run_at,
        job.attempt,
        job.result,
        *(_error_params(error) if error is not None else (None, None, None, None)),
        job.started_at,
        job.finished_at,
        job.worker_id,
        job.lease_token,
        job.lease_expires_at,
        int(job.cancel_requested),
        job.progress,
        job.id,
    )


def _error_params(error: JobError) -> tuple[str, str, str, int]:
    return (error.type, error.message, error.traceback, int(error.retryable))


def row_to_job(row: Sequence[Any]) -> Job:
    error = None if row[17] is None else JobError(row[17], row[18], row[19], bool(row[20]))
    return Job(
        JobId(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        _STATES[row[5]],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
        tuple(json.loads(row[15])) if row[15] is not None else (),
        row[16],
        error,
        row[21],
        row[22],
        row[23],
        row[24],
        row[25],
        bool(row[26]),
        row[27],
        row[28],
        row[29],
    )


WORKER_COLUMNS = (
    "id, namespace, queues, connected_at, last_heartbeat, state, tasks, concurrency, language,"
    " host, pid"
)


def worker_params(worker: WorkerInfo) -> tuple[Any, ...]:
    return (
        worker.id,
        worker.namespace,
        json.dumps(worker.queues),
        worker.connected_at,
        worker.last_heartbeat,
        worker.state.value,
        json.dumps(worker.tasks),
        worker.concurrency,
        worker.language,
        worker.host,
        worker.pid,
    )


def row_to_worker(row: Sequence[Any], running: int) -> WorkerInfo:
    return WorkerInfo(
        id=row[0],
        namespace=row[1],
        queues=tuple(json.loads(row[2])),
        connected_at=row[3],
        last_heartbeat=row[4],
        state=WorkerState(row[5]),
        tasks=tuple(json.loads(row[6])),
        concurrency=row[7],
        language=row[8],
        host=row[9],
        pid=row[10],
        running=running,
    )


SCHEDULE_COLUMNS = "namespace, id, spec, paused, next_fire_at, last_fire_at, created_at"


def schedule_params(schedule: ScheduleRecord) -> tuple[Any, ...]:
    return (
        schedule.namespace,
        schedule.id,
        schedule.spec,
        int(schedule.paused),
        schedule.next_fire_at,
        schedule.last_fire_at,
        schedule.created_at,
    )


def row_to_schedule(row: Sequence[Any]) -> ScheduleRecord:
    return ScheduleRecord(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6])
