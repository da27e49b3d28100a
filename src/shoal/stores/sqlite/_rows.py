"""Conversions between model objects and SQLite rows.

`JOB_COLUMNS` lists the columns in the order of `Job`'s fields (the four error columns stand in
for `error`), so a row becomes a `Job` positionally: building it by keyword costs twice as much,
and this runs for every job a claim or a listing returns.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
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

#: Rows per multi-row INSERT (SQLite allows 32,766 parameters per statement).
INSERT_CHUNK = 500


def insert_chunks(rows: int) -> list[int]:
    """The sizes of the INSERTs that store `rows` rows: full chunks, then the remainder's
    hundreds, tens and units. Each size is a statement that the connection keeps prepared (~1 MB
    for 500 rows), so whatever the batches' sizes there are at most 23 of them, and a round
    batch (100, 500, 1,000 jobs) takes one statement per 500.
    """
    sizes = [INSERT_CHUNK] * (rows // INSERT_CHUNK)
    rest = rows % INSERT_CHUNK
    sizes += [part for part in (rest // 100 * 100, rest % 100 // 10 * 10, rest % 10) if part]
    return sizes


#: What a new job can carry. The rest of a new job's row (`_RUN_COLUMNS`) starts empty: NULL,
#: or the constant 0 that `insert_jobs_sql` writes for `attempt` and `cancel_requested`.
#: Binding these 17 parameters rather than all 30 takes ~40% off a bulk INSERT with every
#: index (bench/README.md).
_NEW_COLUMNS = (
    "id, namespace, queue, task, payload, state, created_at, run_at, content_type, priority,"
    " max_attempts, backoff, timeout, idempotency_key, tags, parent_id, schedule_id"
)
#: What a run sets, in the order of `run_params`.
_RUN_COLUMNS = (
    "attempt, result, error_type, error_message, error_traceback, error_retryable, started_at,"
    " finished_at, worker_id, lease_token, lease_expires_at, cancel_requested, progress"
)


@functools.cache
def insert_jobs_sql(rows: int, new: bool = True) -> str:
    """One INSERT for `rows` jobs: the writer releases the GIL once per statement, not per row.

    A row's parameters are `new_job_params`, followed by `run_params` unless `new`.
    """
    if new:
        columns, row = f"{_NEW_COLUMNS}, attempt, cancel_requested", f"({'?, ' * 17}0, 0)"
    else:
        columns, row = f"{_NEW_COLUMNS}, {_RUN_COLUMNS}", f"({', '.join('?' * 30)})"
    return f"INSERT INTO jobs ({columns}) VALUES {', '.join([row] * rows)}"


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


def is_new(job: Job) -> bool:
    """Whether `job` has never run: everything a run sets is still empty."""
    return (
        job.attempt == 0
        and job.started_at is None
        and job.finished_at is None
        and job.result is None
        and job.error is None
        and job.lease_token is None
        and job.worker_id is None
        and job.lease_expires_at is None
        and job.progress is None
        and not job.cancel_requested
    )


def new_job_params(job: Job) -> tuple[Any, ...]:
    """What a new job carries, in the order of `_NEW_COLUMNS` (see `insert_jobs_sql`)."""
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
        job.max_attempts,
        job.backoff,
        job.timeout,
        job.idempotency_key,
        json.dumps(job.tags) if job.tags else None,
        job.parent_id,
        job.schedule_id,
    )


def run_params(job: Job) -> tuple[Any, ...]:
    """What a run set, in the order of `_RUN_COLUMNS`: a job that is not new needs them too."""
    error = job.error
    return (
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


# Decoding a row is the commonest thing the store does (every claimed and finished job), and
# a frozen dataclass's __init__ sets each of Job's 27 fields through object.__setattr__: three
# times slower than filling its slots directly, as pickle does. Job has no __post_init__ to skip
# (tests/unit/test_sqlite_store.py checks that the two ways agree).
_new_job: Any = object.__new__
_SLOTS: Mapping[str, Any] = vars(Job)
_set_id: Any = _SLOTS["id"].__set__
_set_namespace: Any = _SLOTS["namespace"].__set__
_set_queue: Any = _SLOTS["queue"].__set__
_set_task: Any = _SLOTS["task"].__set__
_set_payload: Any = _SLOTS["payload"].__set__
_set_state: Any = _SLOTS["state"].__set__
_set_created_at: Any = _SLOTS["created_at"].__set__
_set_run_at: Any = _SLOTS["run_at"].__set__
_set_content_type: Any = _SLOTS["content_type"].__set__
_set_priority: Any = _SLOTS["priority"].__set__
_set_attempt: Any = _SLOTS["attempt"].__set__
_set_max_attempts: Any = _SLOTS["max_attempts"].__set__
_set_backoff: Any = _SLOTS["backoff"].__set__
_set_timeout: Any = _SLOTS["timeout"].__set__
_set_idempotency_key: Any = _SLOTS["idempotency_key"].__set__
_set_tags: Any = _SLOTS["tags"].__set__
_set_result: Any = _SLOTS["result"].__set__
_set_error: Any = _SLOTS["error"].__set__
_set_started_at: Any = _SLOTS["started_at"].__set__
_set_finished_at: Any = _SLOTS["finished_at"].__set__
_set_worker_id: Any = _SLOTS["worker_id"].__set__
_set_lease_token: Any = _SLOTS["lease_token"].__set__
_set_lease_expires_at: Any = _SLOTS["lease_expires_at"].__set__
_set_cancel_requested: Any = _SLOTS["cancel_requested"].__set__
_set_progress: Any = _SLOTS["progress"].__set__
_set_parent_id: Any = _SLOTS["parent_id"].__set__
_set_schedule_id: Any = _SLOTS["schedule_id"].__set__


def row_to_job(row: Sequence[Any]) -> Job:
    job = _new_job(Job)
    _set_id(job, row[0])
    _set_namespace(job, row[1])
    _set_queue(job, row[2])
    _set_task(job, row[3])
    _set_payload(job, row[4])
    _set_state(job, _STATES[row[5]])
    _set_created_at(job, row[6])
    _set_run_at(job, row[7])
    _set_content_type(job, row[8])
    _set_priority(job, row[9])
    _set_attempt(job, row[10])
    _set_max_attempts(job, row[11])
    _set_backoff(job, row[12])
    _set_timeout(job, row[13])
    _set_idempotency_key(job, row[14])
    _set_tags(job, tuple(json.loads(row[15])) if row[15] is not None else ())
    _set_result(job, row[16])
    error = None if row[17] is None else JobError(row[17], row[18], row[19], bool(row[20]))
    _set_error(job, error)
    _set_started_at(job, row[21])
    _set_finished_at(job, row[22])
    _set_worker_id(job, row[23])
    _set_lease_token(job, row[24])
    _set_lease_expires_at(job, row[25])
    _set_cancel_requested(job, bool(row[26]))
    _set_progress(job, row[27])
    _set_parent_id(job, row[28])
    _set_schedule_id(job, row[29])
    return job  # type: ignore[no-any-return]


def row_to_job_slow(row: Sequence[Any]) -> Job:
    """The same as `row_to_job` through `Job.__init__`, for the tests."""
    error = None if row[17] is None else JobError(row[17], row[18], row[19], bool(row[20]))
    tags = tuple(json.loads(row[15])) if row[15] is not None else ()
    return Job(
        JobId(row[0]), row[1], row[2], row[3], row[4], _STATES[row[5]], row[6], row[7], row[8],
        row[9], row[10], row[11], row[12], row[13], row[14], tags, row[16], error, row[21],
        row[22], row[23], row[24], row[25], bool(row[26]), row[27], row[28], row[29],
    )  # fmt: skip


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
