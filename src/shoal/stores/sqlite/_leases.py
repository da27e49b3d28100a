"""The hot path: claims, heartbeats and completions (writer thread).

`LeaseCache` keeps the jobs this store leased, by id, as the claim wrote them. It is a hint,
never a source of truth: a completion that finds its job there writes with a guard on every
column the cached copy could disagree on (state, token, cancel request), so a stale entry only
sends it to the slow path, which reads the row. The hit saves the read and the decoding of a
row, which is most of a completion's cost; the file is held exclusively, so no other process
writes behind the cache's back.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from shoal.core.errors import LeaseLost
from shoal.core.model import Job, JobState, LeaseRef
from shoal.core.ports import ClaimRequest, HeartbeatResult
from shoal.stores.sqlite._rows import JOB_COLUMNS, row_to_job

LeaseCache = dict[str, Job]
#: Past this many entries the cache starts again empty; entries of jobs that left `running`
#: by another way than a completion are dropped by those moves, so this only bounds leaks.
MAX_CACHED = 100_000

_CLAIM_SQL: dict[tuple[int, int], str] = {}
_CLAIM_UPDATE = (
    "UPDATE jobs SET state = 'running', worker_id = ?, lease_token = ?, lease_expires_at = ?,"
    " attempt = ?, started_at = ? WHERE rowid = ?"
)
# Positions in a JOB_COLUMNS row of the columns a claim changes.
_STATE, _ATTEMPT, _STARTED, _WORKER, _TOKEN, _EXPIRES = 5, 10, 21, 23, 24, 25


def _claim_sql(queues: int, tasks: int) -> str:
    sql = _CLAIM_SQL.get((queues, tasks))
    if sql is None:
        task_filter = f" AND task IN ({', '.join('?' * tasks)})" if tasks else ""
        # INDEXED BY: the ready index gives the claim order; without statistics the planner
        # could prefer another index on (namespace, queue) and sort the whole queue.
        sql = (
            f"SELECT rowid, {JOB_COLUMNS} FROM jobs INDEXED BY jobs_ready"
            f" WHERE namespace = ? AND queue IN ({', '.join('?' * queues)})"
            " AND state IN ('queued', 'scheduled') AND run_at <= ?"
            f"{task_filter} ORDER BY priority DESC, run_at, id LIMIT ?"
        )
        _CLAIM_SQL[(queues, tasks)] = sql
    return sql


def claim(conn: sqlite3.Connection, request: ClaimRequest, leased: LeaseCache) -> list[Job]:
    """`transitions.claim` for the best `limit` waiting jobs, in claim order."""
    paused = {
        name
        for (name,) in conn.execute(
            "SELECT queue FROM paused_queues WHERE namespace = ?", (request.namespace,)
        )
    }
    queues = [name for name in dict.fromkeys(request.queues) if name not in paused]
    tasks = request.tasks or ()
    if not queues or request.limit < 1 or (request.tasks is not None and not tasks):
        return []
    now, worker = request.now, request.worker_id
    params = [request.namespace, *queues, now, *tasks, request.limit]
    rows = conn.execute(_claim_sql(len(queues), len(tasks)), params).fetchall()
    if not rows:
        return []
    expires = now + request.lease_ttl
    # 96 random bits per token, as `ids.new_token` makes them, drawn in one call.
    tokens = os.urandom(12 * len(rows)).hex()
    jobs: list[Job] = []
    updates: list[tuple[Any, ...]] = []
    for index, row in enumerate(rows):
        values = list(row[1:])
        token = tokens[24 * index : 24 * index + 24]
        attempt = values[_ATTEMPT] + 1
        values[_STATE], values[_ATTEMPT], values[_STARTED] = JobState.RUNNING.value, attempt, now
        values[_WORKER], values[_TOKEN], values[_EXPIRES] = worker, token, expires
        jobs.append(row_to_job(values))
        updates.append((worker, token, expires, attempt, now, row[0]))
    conn.executemany(_CLAIM_UPDATE, updates)
    if len(leased) > MAX_CACHED:
        leased.clear()
    for job in jobs:
        leased[job.id] = job
    return jobs


_RENEW = (
    "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND state = 'running' AND lease_token = ?"
    " RETURNING cancel_requested"
)


def heartbeat(
    conn: sqlite3.Connection, leases: Sequence[LeaseRef], lease_ttl: float, now: float
) -> HeartbeatResult:
    """`transitions.renew` for every live lease; the others are reported lost."""
    renewed: list[str] = []
    lost: list[str] = []
    cancelled: list[str] = []
    expires = now + lease_ttl
    for lease in leases:
        row = conn.execute(_RENEW, (expires, lease.job_id, lease.token)).fetchone()
        if row is None:
            lost.append(lease.job_id)
            continue
        renewed.append(lease.job_id)
        if row[0]:
            cancelled.append(lease.job_id)
    return HeartbeatResult(tuple(renewed), tuple(lost), tuple(cancelled))


_SET_DONE = (
    "UPDATE jobs SET state = 'succeeded', result = ?, finished_at = ?, progress = 1.0,"
    " worker_id = NULL, lease_token = NULL, lease_expires_at = NULL"
)
_COMPLETE_CACHED = (
    f"{_SET_DONE} WHERE id = ? AND state = 'running' AND lease_token = ? AND cancel_requested = ?"
)
_COMPLETE = (
    f"{_SET_DONE} WHERE id = ? AND state = 'running' AND lease_token = ? RETURNING {JOB_COLUMNS}"
)

CompleteArgs = tuple[LeaseRef, "bytes | None", float]


def complete_many(
    conn: sqlite3.Connection, requests: list[CompleteArgs], leased: LeaseCache
) -> list[Job | LeaseLost]:
    """`transitions.complete` for each request, in one statement when the cache knows them all.

    Returns, per request, the finished job or the `LeaseLost` it raises.
    """
    cached: list[Job | None] = []
    for lease, _, _ in requests:
        job = leased.pop(lease.job_id, None)
        cached.append(job if job is not None and job.lease_token == lease.token else None)
    fast = [
        (result, now, lease.job_id, lease.token, int(job.cancel_requested))
        for (lease, result, now), job in zip(requests, cached, strict=True)
        if job is not None
    ]
    if fast:
        conn.execute("SAVEPOINT cached")
        if conn.executemany(_COMPLETE_CACHED, fast).rowcount == len(fast):
            conn.execute("RELEASE cached")
        else:  # some entry was stale; we cannot tell which, so read every row instead
            conn.execute("ROLLBACK TO cached")
            conn.execute("RELEASE cached")
            cached = [None] * len(requests)
    out: list[Job | LeaseLost] = []
    for (lease, result, now), job in zip(requests, cached, strict=True):
        if job is not None:
            out.append(completed(job, result, now))
            continue
        row = conn.execute(_COMPLETE, (result, now, lease.job_id, lease.token)).fetchone()
        if row is None:
            out.append(LeaseLost(f"lease on job {lease.job_id} is not held"))
        else:
            out.append(row_to_job(row))
    return out


def completed(job: Job, result: bytes | None, now: float) -> Job:
    """What `transitions.complete(job, job.lease_token, result, now)` returns, built directly:
    `dataclasses.replace` costs twice as much, and this runs once per job.
    """
    return Job(
        job.id,
        job.namespace,
        job.queue,
        job.task,
        job.payload,
        JobState.SUCCEEDED,
        job.created_at,
        job.run_at,
        job.content_type,
        job.priority,
        job.attempt,
        job.max_attempts,
        job.backoff,
        job.timeout,
        job.idempotency_key,
        job.tags,
        result,
        job.error,
        job.started_at,
        now,
        None,
        None,
        None,
        job.cancel_requested,
        1.0,
        job.parent_id,
        job.schedule_id,
    )
