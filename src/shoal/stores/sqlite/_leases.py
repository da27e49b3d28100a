"""The hot path: claims, heartbeats and completions (writer thread).

The writer thread is the store's bottleneck, and it shares the GIL with the event loop. So the
functions here do SQL and little else: they return rows (lists of column values), and the
event loop side turns them into `Job`s, which it can do while the writer runs SQLite with the
GIL released.

`LeaseCache` keeps the rows this store leased, by job id, as the claim wrote them. It is a hint,
never a source of truth: a completion that finds its row there writes with a guard on every
column the cached copy could disagree on (state, token, cancel request), so a stale entry only
sends it to the slow path, which reads the row. A hit saves that read, which is most of a
completion's cost; the file is held exclusively, so no other process writes behind its back.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from shoal.core.errors import LeaseLost
from shoal.core.model import JobState, LeaseRef
from shoal.core.ports import ClaimRequest, HeartbeatResult
from shoal.stores.sqlite._rows import JOB_COLUMNS, Row

#: Job id -> (rowid, the row as leased); the rowid spares the completion an index search.
#: Cached rows are never changed in place (the event loop may be reading them): replace them.
LeaseCache = dict[str, tuple[int, Row]]
#: Past this many entries the cache starts again empty; entries of jobs that left `running`
#: by another way than a completion are dropped by those moves, so this only bounds leaks.
MAX_CACHED = 100_000

# Positions in a JOB_COLUMNS row of the columns the lease moves change.
_TASK, _STATE, _RUN_AT, _PRIORITY, _ATTEMPT = 3, 5, 7, 9, 10
_RESULT, _STARTED, _FINISHED = 16, 21, 22
_WORKER, _TOKEN, _EXPIRES, CANCEL, _PROGRESS = 23, 24, 25, 26, 27
_RUNNING, _SUCCEEDED = JobState.RUNNING.value, JobState.SUCCEEDED.value

#: Rows per UPDATE ... FROM VALUES: bounds the statement's size and the number of cached texts.
_CHUNK = 128
#: How many queued jobs `claim_settled` reads on the event loop: a task filter skips every
#: waiting job of other tasks, any number of them.
FILTER_SCAN = 128


@functools.cache
def _values_update(sql: str, width: int, rows: int) -> str:
    # One statement for a whole batch (UPDATE ... FROM VALUES) rather than executemany: the
    # writer then releases the GIL once per batch instead of once per row, and the event loop
    # thread, which wants the GIL meanwhile, costs it a hand-over each time it gets it back.
    row = f"({', '.join('?' * width)})"
    return sql.format(values=", ".join([row] * rows))


_CLAIM_UPDATE = (
    "UPDATE jobs SET state = 'running', worker_id = ?, lease_expires_at = ?, started_at = ?,"
    " attempt = attempt + 1, lease_token = v.column2"
    " FROM (VALUES {values}) AS v WHERE jobs.rowid = v.column1"
)


_CLAIM_ORDER = "priority DESC, run_at, id"
#: How many scheduled jobs a claim reads, of those already due and of those due within its
#: lookahead: the oldest, of every queue. In the steady state far fewer wait (the promoter
#: makes due jobs queued as they come due); after a restart or a burst, the rest wait for the
#: promoter or for their time, so that no claim reads more than this.
SCHEDULED_SCAN = 128

# The three ranges a claim reads, as (index, terms, order, only the oldest SCHEDULED_SCAN).
# INDEXED BY: without statistics the planner could prefer an index on (namespace, queue) and
# sort the whole queue.
# Queued jobs: the ready index holds only them, in claim order.
_QUEUED = ("jobs_ready", "state = 'queued' AND run_at <= ?", _CLAIM_ORDER, False)
# Scheduled jobs already due that the promoter has not made queued yet.
_DUE = ("jobs_due", "state = 'scheduled' AND run_at <= ?", _CLAIM_ORDER, True)
# Scheduled jobs due within the lookahead.
_AHEAD = ("jobs_due", "state = 'scheduled' AND run_at > ? AND run_at <= ?", "run_at, id", True)


@functools.cache
def _range_sql(kind: tuple[str, str, str, bool], queues: int, tasks: int) -> str:
    """A claim's read of one range; its parameters: the terms', then the namespace, the
    queues, the tasks and the limit.
    """
    index, terms, order, oldest = kind
    source = f"jobs INDEXED BY {index} WHERE {terms}"
    if oldest:  # the due index is by run_at, of every queue: take its start, then filter
        source = f"(SELECT rowid AS rowid, * FROM {source} ORDER BY run_at LIMIT {SCHEDULED_SCAN})"
        source += " WHERE true"
    task_filter = f" AND task IN ({', '.join('?' * tasks)})" if tasks else ""
    return (
        f"SELECT rowid, {JOB_COLUMNS} FROM {source} AND namespace = ?"
        f" AND queue IN ({', '.join('?' * queues)}){task_filter} ORDER BY {order} LIMIT ?"
    )


def _queued_of_tasks(
    conn: sqlite3.Connection, request: ClaimRequest, queues: list[str], scan: int
) -> list[Row] | None:
    """The best `limit` queued jobs of the request's tasks among the first `scan` queued jobs
    of its queues, in claim order; None when those do not settle which jobs are the best.
    """
    params = [request.now, request.namespace, *queues, scan]
    wanted = set(request.tasks or ())
    hits: list[Row] = []
    seen = 0
    # Read lazily, in claim order: SQLite steps no further than the claim's `limit` jobs of
    # these tasks (all of the first ones, usually), at most `scan` jobs in all.
    cursor = conn.execute(_range_sql(_QUEUED, len(queues), 0), params)
    for row in cursor:
        seen += 1
        if row[_TASK + 1] in wanted:
            hits.append(row)
            if len(hits) == request.limit:
                break
    cursor.close()
    if len(hits) < request.limit and seen == scan:
        return None  # more jobs wait past the prefix, and one of them may be of these tasks
    return hits


def _claim_order(row: Row) -> tuple[Any, ...]:
    return -row[_PRIORITY + 1], row[_RUN_AT + 1], row[1]  # row[0] is the rowid


def _with_scheduled(
    conn: sqlite3.Connection, request: ClaimRequest, queues: list[str], queued: list[Row]
) -> list[Row]:
    """The best `limit` of the `queued` rows and the due scheduled jobs, in claim order; then,
    if there is room, jobs due within the lookahead (rowid first in each row).
    """
    tasks, now, limit = request.tasks or (), request.now, request.limit
    shape = len(queues), len(tasks)
    tail = [request.namespace, *queues, *tasks]
    rows = queued
    if late := conn.execute(_range_sql(_DUE, *shape), [now, *tail, limit]).fetchall():
        rows = sorted(rows + late, key=_claim_order)[:limit]
    if len(rows) < limit and request.lookahead > 0:
        params = [now, now + request.lookahead, *tail, limit - len(rows)]
        rows += conn.execute(_range_sql(_AHEAD, *shape), params).fetchall()
    return rows


def _open_queues(conn: sqlite3.Connection, request: ClaimRequest) -> list[str]:
    """The request's queues but the paused ones; none when it can claim nothing at all."""
    if request.limit < 1 or (request.tasks is not None and not request.tasks):
        return []
    paused = {
        name
        for (name,) in conn.execute(
            "SELECT queue FROM paused_queues WHERE namespace = ?", (request.namespace,)
        )
    }
    return [name for name in dict.fromkeys(request.queues) if name not in paused]


def claim(conn: sqlite3.Connection, request: ClaimRequest, leased: LeaseCache) -> list[Row]:
    """The rows of the best `limit` waiting jobs after `transitions.claim`, in claim order."""
    if not (queues := _open_queues(conn, request)):
        return []
    tasks = request.tasks or ()
    params = [request.now, request.namespace, *queues, *tasks, request.limit]
    queued = conn.execute(_range_sql(_QUEUED, len(queues), len(tasks)), params).fetchall()
    return _lease(conn, request, leased, _with_scheduled(conn, request, queues, queued))


def claim_settled(
    conn: sqlite3.Connection, request: ClaimRequest, leased: LeaseCache, scan: int
) -> list[Row] | None:
    """`claim` for a request filtered by task, reading at most `scan` queued jobs: None, and
    nothing changed, when those do not settle which jobs are the best.
    """
    if not (queues := _open_queues(conn, request)):
        return []
    queued = _queued_of_tasks(conn, request, queues, scan)
    if queued is None:
        return None
    return _lease(conn, request, leased, _with_scheduled(conn, request, queues, queued))


def _lease(
    conn: sqlite3.Connection, request: ClaimRequest, leased: LeaseCache, rows: list[Row]
) -> list[Row]:
    """`rows` (rowid first) leased to the request's worker: their new values, rowid dropped."""
    if not rows:
        return []
    now, worker = request.now, request.worker_id
    expires = now + request.lease_ttl
    # 96 random bits per token, as `ids.new_token` makes them, drawn in one call.
    tokens = os.urandom(12 * len(rows)).hex()
    claimed: list[Row] = []
    updates: list[Any] = [worker, expires, now]
    if len(leased) > MAX_CACHED:
        leased.clear()
    for index, row in enumerate(rows):
        values = list(row[1:])
        token = tokens[24 * index : 24 * index + 24]
        attempt = values[_ATTEMPT] + 1
        values[_STATE], values[_ATTEMPT], values[_STARTED] = _RUNNING, attempt, now
        values[_WORKER], values[_TOKEN], values[_EXPIRES] = worker, token, expires
        claimed.append(values)
        updates += (row[0], token)
        leased[values[0]] = (row[0], values)
    conn.execute(_values_update(_CLAIM_UPDATE, 2, len(rows)), updates)
    return claimed


_RENEW = (
    "UPDATE jobs SET lease_expires_at = max(coalesce(lease_expires_at, 0), ?)"
    " FROM (VALUES {values}) AS v"
    " WHERE jobs.id = v.column1 AND jobs.state = 'running' AND jobs.lease_token = v.column2"
    " RETURNING jobs.id, jobs.lease_token, jobs.cancel_requested"
)


def heartbeat(
    conn: sqlite3.Connection, leases: Sequence[LeaseRef], lease_ttl: float, now: float
) -> HeartbeatResult:
    """`transitions.renew` for every live lease; the others are reported lost."""
    live: dict[str, tuple[str, int]] = {}
    for start in range(0, len(leases), _CHUNK):
        chunk = leases[start : start + _CHUNK]
        params: list[Any] = [now + lease_ttl]
        for lease in chunk:
            params += (lease.job_id, lease.token)
        for job_id, token, cancel in conn.execute(_values_update(_RENEW, 2, len(chunk)), params):
            live[job_id] = (token, cancel)
    renewed: list[str] = []
    lost: list[str] = []
    cancelled: list[str] = []
    for lease in leases:
        found = live.get(lease.job_id)
        if found is None or found[0] != lease.token:
            lost.append(lease.job_id)
            continue
        renewed.append(lease.job_id)
        if found[1]:
            cancelled.append(lease.job_id)
    return HeartbeatResult(tuple(renewed), tuple(lost), tuple(cancelled))


_SET_DONE = (
    "UPDATE jobs SET state = 'succeeded', result = ?, finished_at = ?, progress = 1.0,"
    " worker_id = NULL, lease_token = NULL, lease_expires_at = NULL"
)
_COMPLETE_CACHED = (
    "UPDATE jobs SET state = 'succeeded', result = v.column2, finished_at = v.column3,"
    " progress = 1.0, worker_id = NULL, lease_token = NULL, lease_expires_at = NULL"
    " FROM (VALUES {values}) AS v WHERE jobs.rowid = v.column1 AND jobs.state = 'running'"
    " AND jobs.lease_token = v.column4 AND jobs.cancel_requested = v.column5"
)

_COMPLETE = (
    f"{_SET_DONE} WHERE id = ? AND state = 'running' AND lease_token = ? RETURNING {JOB_COLUMNS}"
)

CompleteArgs = tuple[LeaseRef, "bytes | None", float]


def complete_many(
    conn: sqlite3.Connection, requests: list[CompleteArgs], leased: LeaseCache
) -> list[Sequence[Any] | LeaseLost]:
    """`transitions.complete` for each request, in one statement when the cache knows them all.

    Returns, per request, the finished job's row or the `LeaseLost` it raises.
    """
    cached: list[Row | None] = []
    fast: list[Any] = []
    for lease, result, now in requests:
        entry = leased.pop(lease.job_id, None)
        if entry is None or entry[1][_TOKEN] != lease.token:
            cached.append(None)
            continue
        cached.append(entry[1])
        fast += (entry[0], result, now, lease.token, entry[1][CANCEL])
    if fast:
        conn.execute("SAVEPOINT cached")
        changed = 0
        for start in range(0, len(fast), 5 * _CHUNK):
            chunk = fast[start : start + 5 * _CHUNK]
            sql = _values_update(_COMPLETE_CACHED, 5, len(chunk) // 5)
            changed += conn.execute(sql, chunk).rowcount
        if changed == len(fast) // 5:
            conn.execute("RELEASE cached")
        else:  # some entry was stale; we cannot tell which, so read every row instead
            conn.execute("ROLLBACK TO cached")
            conn.execute("RELEASE cached")
            cached = [None] * len(requests)
    out: list[Sequence[Any] | LeaseLost] = []
    for (lease, result, now), values in zip(requests, cached, strict=True):
        if values is not None:
            out.append(completed(values, result, now))
            continue
        row = conn.execute(_COMPLETE, (result, now, lease.job_id, lease.token)).fetchone()
        out.append(
            row if row is not None else LeaseLost(f"lease on job {lease.job_id} is not held")
        )
    return out


def completed(values: Row, result: bytes | None, now: float) -> Row:
    """The row `transitions.complete` makes of a leased job's row (what `_SET_DONE` writes)."""
    done = values.copy()
    done[_STATE], done[_RESULT], done[_FINISHED], done[_PROGRESS] = _SUCCEEDED, result, now, 1.0
    done[_WORKER] = done[_TOKEN] = done[_EXPIRES] = None
    return done
