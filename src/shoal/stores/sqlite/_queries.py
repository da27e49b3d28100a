"""Reads, as plain functions over the reader's connection (they run on the reader thread).

Each statement runs in its own read transaction, so it sees everything committed before it
started, whatever the writer is doing meanwhile (WAL).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from shoal.core.model import Job, JobPage, JobQuery, JobState, QueueInfo, QueueStats, WorkerInfo
from shoal.core.ports import ScheduleRecord
from shoal.stores.sqlite._rows import (
    JOB_COLUMNS,
    SCHEDULE_COLUMNS,
    WORKER_COLUMNS,
    row_to_job,
    row_to_schedule,
    row_to_worker,
)

_STATES = {state.value: state for state in JobState}


def get_job(conn: sqlite3.Connection, namespace: str, job_id: str) -> Job | None:
    row = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND namespace = ?", (job_id, namespace)
    ).fetchone()
    return row_to_job(row) if row is not None else None


_RUNNING = JobState.RUNNING.value


def list_jobs(conn: sqlite3.Connection, query: JobQuery) -> JobPage:
    where = ["namespace = ?"]
    params: list[Any] = [query.namespace]
    source = "jobs"
    if query.state is JobState.RUNNING:
        # Few rows, all in jobs_leases; scanning jobs_recent for them could read every job.
        source = "jobs INDEXED BY jobs_leases"
        where.append(f"state = '{_RUNNING}'")
    elif query.state is not None:
        # A literal from the enum, and the partial index's own term, so jobs_state serves it.
        where.append(f"state = '{query.state.value}' AND state <> '{_RUNNING}'")
    filters: list[tuple[object, str]] = [
        (query.queue, "queue = ?"),
        (query.task, "task = ?"),
        (query.tag, "EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE value = ?)"),
        (query.created_after, "created_at >= ?"),
        (query.created_before, "created_at < ?"),
        (query.cursor, "id < ?"),
    ]
    for value, clause in filters:
        if value is not None:
            where.append(clause)
            params.append(value)
    params.append(query.limit + 1)
    sql = f"SELECT {JOB_COLUMNS} FROM {source} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    rows = conn.execute(sql, params).fetchall()
    page = tuple(row_to_job(row) for row in rows[: query.limit])
    more = len(rows) > query.limit
    return JobPage(page, page[-1].id if more and page else None)


def _zeros() -> dict[JobState, int]:
    return dict.fromkeys(JobState, 0)


def _counts(
    conn: sqlite3.Connection, namespace: str, queue: str | None
) -> list[tuple[str, str, str, int]]:
    """(queue, task, state, count) of the namespace's jobs (or one queue's)."""
    where = "namespace = ?" + (" AND queue = ?" if queue is not None else "")
    params = (namespace,) if queue is None else (namespace, queue)
    # Waiting and finished jobs: grouped in the order of the covering index jobs_counts, so
    # SQLite streams it without a temporary b-tree.
    rows: list[tuple[str, str, str, int]] = conn.execute(
        f"SELECT queue, task, state, count(*) FROM jobs WHERE {where}"
        f" AND state <> '{_RUNNING}' GROUP BY queue, state, task",
        params,
    ).fetchall()
    rows += conn.execute(
        f"SELECT queue, task, state, count(*) FROM jobs INDEXED BY jobs_leases"
        f" WHERE {where} AND state = '{_RUNNING}' GROUP BY queue, task",
        params,
    ).fetchall()
    return rows


def list_queues(conn: sqlite3.Connection, namespace: str) -> list[QueueInfo]:
    counts: dict[str, dict[JobState, int]] = {}
    for queue, _, state, count in _counts(conn, namespace, None):
        counts.setdefault(queue, _zeros())[_STATES[state]] += count
    paused = {
        queue
        for (queue,) in conn.execute(
            "SELECT queue FROM paused_queues WHERE namespace = ?", (namespace,)
        )
    }
    for queue in paused:
        counts.setdefault(queue, _zeros())
    return [QueueInfo(namespace, name, name in paused, counts[name]) for name in sorted(counts)]


def stats(conn: sqlite3.Connection, namespace: str, queue: str | None) -> QueueStats:
    by_state = _zeros()
    by_task: dict[str, dict[JobState, int]] = {}
    for _, task, state, count in _counts(conn, namespace, queue):
        by_state[_STATES[state]] += count
        by_task.setdefault(task, _zeros())[_STATES[state]] += count
    return QueueStats(by_state, by_task)


def list_workers(conn: sqlite3.Connection, namespace: str | None) -> list[WorkerInfo]:
    sql = f"SELECT {WORKER_COLUMNS} FROM workers"
    params: tuple[str, ...] = ()
    if namespace is not None:
        sql += " WHERE namespace = ?"
        params = (namespace,)
    rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    running = dict(
        conn.execute(
            "SELECT worker_id, count(*) FROM jobs INDEXED BY jobs_leases"
            " WHERE state = 'running' GROUP BY worker_id"
        ).fetchall()
    )
    return [row_to_worker(row, running.get(row[0], 0)) for row in rows]


_GET_WORKER = (
    f"SELECT {WORKER_COLUMNS}, (SELECT count(*) FROM jobs INDEXED BY jobs_leases"
    " WHERE state = 'running' AND worker_id = workers.id) FROM workers WHERE id = ?"
)


def get_worker(conn: sqlite3.Connection, worker_id: str) -> WorkerInfo | None:
    # One statement, so the count is of the same snapshot as the record.
    row = conn.execute(_GET_WORKER, (worker_id,)).fetchone()
    return row_to_worker(row, row[-1]) if row is not None else None


def get_schedule(
    conn: sqlite3.Connection, namespace: str, schedule_id: str
) -> ScheduleRecord | None:
    row = conn.execute(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE namespace = ? AND id = ?",
        (namespace, schedule_id),
    ).fetchone()
    return row_to_schedule(row) if row is not None else None


def list_schedules(conn: sqlite3.Connection, namespace: str | None) -> list[ScheduleRecord]:
    sql = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
    params: tuple[str, ...] = ()
    if namespace is not None:
        sql += " WHERE namespace = ?"
        params = (namespace,)
    return [row_to_schedule(row) for row in conn.execute(sql + " ORDER BY namespace, id", params)]
