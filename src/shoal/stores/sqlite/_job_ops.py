"""Job writes other than the hot path of `_leases`, as plain functions over the writer's
connection (they run on the writer thread).

Moves that need the row's policy (fail, release, lose_lease, cancel, retry) read the row, apply
the pure function of `shoal.core.transitions` and write the row back, so that the rules exist
once. Promotion does not depend on the row and is one statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from shoal.core import transitions
from shoal.core.errors import Conflict, LeaseLost, NotFound
from shoal.core.model import Job, JobError, JobState, LeaseRef
from shoal.core.ports import DueResult, Resumed, WorkerResume
from shoal.stores.sqlite._leases import LeaseCache
from shoal.stores.sqlite._rows import (
    JOB_COLUMNS,
    UPDATE_JOB,
    insert_chunks,
    insert_jobs_sql,
    row_to_job,
    update_params,
)

SELECT_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
_ACTIVE = "('scheduled', 'queued', 'running')"

_ACTIVE_HOLDER = (
    f"SELECT id FROM jobs WHERE namespace = ? AND idempotency_key = ? AND state IN {_ACTIVE}"
    " LIMIT 1"
)
_BY_KEY = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE namespace = ? AND idempotency_key = ?"
    f" AND (state IN {_ACTIVE} OR created_at >= ?)"
    f" ORDER BY state IN {_ACTIVE} DESC, created_at DESC LIMIT 1"
)


def enqueue(
    conn: sqlite3.Connection,
    jobs: Sequence[Job],
    rows: list[tuple[Any, ...]],
    now: float,
    window: float,
    new: bool,
) -> list[int | Sequence[Any] | None]:
    """Insert the jobs (`rows` are their columns) but those whose idempotency key is taken.

    `new`: the rows are `new_job_params`, else those followed by `run_params` (see
    `insert_jobs_sql`).

    Returns per job None (stored), the index of the job of this batch that took its key, or
    the row of the stored job that did.
    """
    out: list[int | Sequence[Any] | None] = []
    fresh = []
    batch_keys: dict[tuple[str, str], int] = {}
    for index, (job, row) in enumerate(zip(jobs, rows, strict=True)):
        key = job.idempotency_key
        if key is not None:
            taken = batch_keys.get((job.namespace, key))
            if taken is not None:
                out.append(taken)
                continue
            existing = conn.execute(_BY_KEY, (job.namespace, key, now - window)).fetchone()
            if existing is not None:
                out.append(existing)
                continue
            batch_keys[(job.namespace, key)] = index
        fresh.append(row)
        out.append(None)
    start = 0
    for size in insert_chunks(len(fresh)):
        chunk = fresh[start : start + size]
        conn.execute(insert_jobs_sql(size, new), [value for row in chunk for value in row])
        start += size
    return out


def _read(conn: sqlite3.Connection, job_id: str) -> Job | None:
    row = conn.execute(SELECT_JOB, (job_id,)).fetchone()
    return row_to_job(row) if row is not None else None


def _lookup(conn: sqlite3.Connection, namespace: str, job_id: str) -> Job:
    job = _read(conn, job_id)
    if job is None or job.namespace != namespace:
        raise NotFound(f"job {job_id} not found in namespace {namespace!r}")
    return job


def _write(conn: sqlite3.Connection, job: Job) -> Job:
    conn.execute(UPDATE_JOB, update_params(job))
    return job


def _leased(conn: sqlite3.Connection, lease: LeaseRef) -> Job:
    job = _read(conn, lease.job_id)
    if job is None:
        raise LeaseLost(f"lease on job {lease.job_id} is not held (no such job)")
    return job


def fail(
    conn: sqlite3.Connection,
    lease: LeaseRef,
    error: JobError,
    now: float,
    retry_delay: float | None,
    leased: LeaseCache,
) -> Job:
    leased.pop(lease.job_id, None)
    job = _leased(conn, lease)
    return _write(conn, transitions.fail(job, lease.token, error, now, retry_delay))


def release(
    conn: sqlite3.Connection, leases: Sequence[LeaseRef], now: float, leased: LeaseCache
) -> list[Job]:
    out: list[Job] = []
    for lease in leases:
        leased.pop(lease.job_id, None)
        job = _read(conn, lease.job_id)
        if job is None or job.state is not JobState.RUNNING or job.lease_token != lease.token:
            continue
        out.append(_write(conn, transitions.release(job, lease.token, now)))
    return out


def _take_back(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[object],
    move: Callable[[Job], Job],
    leased: LeaseCache,
) -> list[Job]:
    """Apply `move` to the running jobs `sql` selects, and store them."""
    held = [row_to_job(row) for row in conn.execute(sql, params).fetchall()]
    for job in held:
        leased.pop(job.id, None)
    moved = [move(job) for job in held]
    conn.executemany(UPDATE_JOB, [update_params(job) for job in moved])
    return moved


def release_worker(
    conn: sqlite3.Connection,
    worker_id: str,
    now: float,
    reason: str,
    namespace: str | None,
    leased: LeaseCache,
) -> list[Job]:
    sql = (
        f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_leases"
        " WHERE state = 'running' AND worker_id = ? AND coalesce(?, namespace) = namespace"
        " ORDER BY id"
    )
    lost = partial(transitions.lose_lease, now=now, reason=reason)
    return _take_back(conn, sql, (worker_id, namespace), lost, leased)


def resume_worker(
    conn: sqlite3.Connection, resume: WorkerResume, now: float, leased: LeaseCache
) -> Resumed:
    kept: list[Job] = []
    for lease in resume.held:
        leased.pop(lease.job_id, None)
        job = _read(conn, lease.job_id)
        if job is None or job.namespace != resume.namespace:
            continue
        if job.state is JobState.RUNNING and job.lease_token == lease.token:
            kept.append(_write(conn, transitions.hand_over(job, lease.token, resume.worker_id)))
    sql = (
        f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_leases"
        " WHERE state = 'running' AND worker_id = ? AND namespace = ? ORDER BY id"
    )

    def give_back(job: Job) -> Job:  # unstarted on the worker: the attempt does not count
        return transitions.release(job, job.lease_token or "", now)

    params = (resume.previous_worker_id, resume.namespace)
    released = _take_back(conn, sql, params, give_back, leased)
    return Resumed(tuple(kept), tuple(released))


def reap_expired(conn: sqlite3.Connection, now: float, limit: int, leased: LeaseCache) -> list[Job]:
    sql = (
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' AND lease_expires_at < ?"
        " ORDER BY lease_expires_at LIMIT ?"
    )
    lost = partial(transitions.lose_lease, now=now, reason="lease expired")
    return _take_back(conn, sql, (now, limit), lost, leased)


def set_progress(conn: sqlite3.Connection, lease: LeaseRef, progress: float) -> None:
    cursor = conn.execute(
        "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running' AND lease_token = ?",
        (progress, lease.job_id, lease.token),
    )
    if cursor.rowcount == 0:
        raise LeaseLost(f"lease on job {lease.job_id} is not held")


def cancel(
    conn: sqlite3.Connection, namespace: str, job_id: str, now: float, leased: LeaseCache
) -> Job:
    job = _write(conn, transitions.cancel(_lookup(conn, namespace, job_id), now))
    leased.pop(job.id, None)  # the cached row no longer matches (rare: the slow path will do)
    return job


def retry(conn: sqlite3.Connection, namespace: str, job_id: str, now: float) -> Job:
    job = _lookup(conn, namespace, job_id)
    holder = None
    if job.idempotency_key is not None:
        found = conn.execute(_ACTIVE_HOLDER, (namespace, job.idempotency_key)).fetchone()
        holder = found[0] if found is not None else None
    return _write(conn, transitions.retry(job, now, holder))


def delete_job(conn: sqlite3.Connection, namespace: str, job_id: str) -> None:
    job = _lookup(conn, namespace, job_id)
    if job.state is JobState.RUNNING:
        raise Conflict(f"job {job_id} is running; cancel it first")
    conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


_PROMOTE = (
    "UPDATE jobs SET state = 'queued' WHERE rowid IN (SELECT rowid FROM jobs"
    " WHERE state = 'scheduled' AND run_at <= ? ORDER BY run_at LIMIT ?)"
    " RETURNING run_at, id, namespace, queue"
)


def promote_due(conn: sqlite3.Connection, now: float, limit: int) -> DueResult:
    promoted = sorted(conn.execute(_PROMOTE, (now, limit)).fetchall())
    queues = tuple(dict.fromkeys((namespace, queue) for _, _, namespace, queue in promoted))
    (next_due,) = conn.execute("SELECT min(run_at) FROM jobs WHERE state = 'scheduled'").fetchone()
    return DueResult(queues, next_due)


def purge_finished(conn: sqlite3.Connection, before: float, limit: int) -> int:
    cursor = conn.execute(
        "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs"
        " WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < ? LIMIT ?)",
        (before, limit),
    )
    return cursor.rowcount
