"""Writes other than job moves: queues, workers, schedules and leader leases (writer thread)."""

from __future__ import annotations

import sqlite3

from shoal.core.errors import Conflict, NotFound
from shoal.core.model import WorkerInfo
from shoal.core.ports import ScheduleRecord
from shoal.stores.sqlite._rows import (
    SCHEDULE_COLUMNS,
    WORKER_COLUMNS,
    row_to_worker,
    schedule_params,
    worker_params,
)


def set_queue_paused(conn: sqlite3.Connection, namespace: str, queue: str, paused: bool) -> None:
    if paused:
        conn.execute(
            "INSERT OR IGNORE INTO paused_queues (namespace, queue) VALUES (?, ?)",
            (namespace, queue),
        )
    else:
        conn.execute(
            "DELETE FROM paused_queues WHERE namespace = ? AND queue = ?", (namespace, queue)
        )


def purge_queue(conn: sqlite3.Connection, namespace: str, queue: str) -> int:
    # The ready index holds the queued jobs of each queue; the due index, the scheduled jobs of
    # every queue (fewer than the queue's listing index, which keeps its finished jobs too).
    queued = conn.execute(
        "DELETE FROM jobs INDEXED BY jobs_ready"
        " WHERE namespace = ? AND queue = ? AND state = 'queued'",
        (namespace, queue),
    ).rowcount
    scheduled = conn.execute(
        "DELETE FROM jobs INDEXED BY jobs_due"
        " WHERE state = 'scheduled' AND namespace = ? AND queue = ?",
        (namespace, queue),
    ).rowcount
    return queued + scheduled


def delete_queue(conn: sqlite3.Connection, namespace: str, queue: str) -> int:
    running = conn.execute(
        "SELECT 1 FROM jobs INDEXED BY jobs_leases"
        " WHERE namespace = ? AND queue = ? AND state = 'running' LIMIT 1",
        (namespace, queue),
    ).fetchone()
    if running is not None:
        raise Conflict(f"queue {queue!r} has running jobs; cancel or wait for them first")
    count = conn.execute(
        "DELETE FROM jobs WHERE namespace = ? AND queue = ?", (namespace, queue)
    ).rowcount
    conn.execute("DELETE FROM paused_queues WHERE namespace = ? AND queue = ?", (namespace, queue))
    return count


def upsert_worker(conn: sqlite3.Connection, worker: WorkerInfo) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO workers ({WORKER_COLUMNS}) VALUES ({', '.join('?' * 11)})",
        worker_params(worker),
    )


def touch_worker(
    conn: sqlite3.Connection, worker_id: str, now: float, namespace: str | None
) -> bool:
    cursor = conn.execute(
        "UPDATE workers SET last_heartbeat = ? WHERE id = ? AND coalesce(?, namespace) = namespace",
        (now, worker_id, namespace),
    )
    return cursor.rowcount > 0


def delete_worker(conn: sqlite3.Connection, worker_id: str, namespace: str | None) -> None:
    conn.execute(
        "DELETE FROM workers WHERE id = ? AND coalesce(?, namespace) = namespace",
        (worker_id, namespace),
    )


def forget_workers(conn: sqlite3.Connection, silent_before: float, limit: int) -> list[WorkerInfo]:
    # "IS NOT NULL": one NULL in a NOT IN list makes the test unknown, and nothing would go.
    rows = conn.execute(
        "DELETE FROM workers WHERE rowid IN (SELECT rowid FROM workers WHERE last_heartbeat < ?"
        " AND id NOT IN (SELECT worker_id FROM jobs INDEXED BY jobs_leases"
        " WHERE state = 'running' AND worker_id IS NOT NULL) LIMIT ?)"
        f" RETURNING {WORKER_COLUMNS}",
        (silent_before, limit),
    ).fetchall()
    return [row_to_worker(row, 0) for row in rows]


def save_schedule(conn: sqlite3.Connection, schedule: ScheduleRecord) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({', '.join('?' * 7)})",
        schedule_params(schedule),
    )


def create_schedule(conn: sqlite3.Connection, schedule: ScheduleRecord) -> None:
    cursor = conn.execute(
        f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({', '.join('?' * 7)})"
        " ON CONFLICT (namespace, id) DO NOTHING",
        schedule_params(schedule),
    )
    if cursor.rowcount == 0:
        raise Conflict(f"schedule {schedule.id} exists in namespace {schedule.namespace!r}")


def replace_schedule(
    conn: sqlite3.Connection, schedule: ScheduleRecord, expected: ScheduleRecord
) -> bool:
    cursor = conn.execute(
        "UPDATE schedules SET spec = ?, paused = ?, next_fire_at = ?, last_fire_at = ?"
        " WHERE namespace = ? AND id = ? AND spec = ? AND paused = ?",
        (
            schedule.spec,
            int(schedule.paused),
            schedule.next_fire_at,
            schedule.last_fire_at,
            schedule.namespace,
            schedule.id,
            expected.spec,
            int(expected.paused),
        ),
    )
    return cursor.rowcount > 0


def delete_schedule(conn: sqlite3.Connection, namespace: str, schedule_id: str) -> None:
    cursor = conn.execute(
        "DELETE FROM schedules WHERE namespace = ? AND id = ?", (namespace, schedule_id)
    )
    if cursor.rowcount == 0:
        raise NotFound(f"schedule {schedule_id} not found in namespace {namespace!r}")


def try_acquire_leader(
    conn: sqlite3.Connection, name: str, holder: str, ttl: float, now: float
) -> bool:
    # One statement: insert, or take over when the holder is the caller or its lease is over.
    cursor = conn.execute(
        "INSERT INTO leaders (name, holder, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE leaders.holder = excluded.holder OR leaders.expires_at <= ?",
        (name, holder, now + ttl, now),
    )
    return cursor.rowcount > 0


def release_leader(conn: sqlite3.Connection, name: str, holder: str) -> None:
    conn.execute("DELETE FROM leaders WHERE name = ? AND holder = ?", (name, holder))


def forget_leaders(conn: sqlite3.Connection) -> None:
    # The file is locked by this process, so whoever held a lease before is gone: the "at once"
    # take-over of the Store contract.
    conn.execute("DELETE FROM leaders")
