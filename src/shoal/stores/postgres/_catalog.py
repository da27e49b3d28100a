from __future__ import annotations

from collections import defaultdict

from shoal.core.errors import Conflict, NotFound
from shoal.core.model import JobState, QueueInfo, QueueStats, WorkerInfo
from shoal.core.ports import ScheduleRecord
from shoal.stores.postgres._base import Base, Conn, row_count
from shoal.stores.postgres._rows import to_schedule, to_worker

_UPSERT_WORKER = """
INSERT INTO shoal_workers (id, namespace, queues, connected_at, last_heartbeat, state, tasks,
                           concurrency, language, host, pid)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE SET
    namespace = EXCLUDED.namespace, queues = EXCLUDED.queues,
    connected_at = EXCLUDED.connected_at, last_heartbeat = EXCLUDED.last_heartbeat,
    state = EXCLUDED.state, tasks = EXCLUDED.tasks, concurrency = EXCLUDED.concurrency,
    language = EXCLUDED.language, host = EXCLUDED.host, pid = EXCLUDED.pid
"""

# shoal_workers.id is COLLATE "C", shoal_jobs.worker_id is not: compared as they are, the
# comparison takes "C" and cannot use the index of running jobs (it read them all).
_RUNNING_OF_W = (
    "FROM shoal_jobs j WHERE j.state = 'running' AND j.worker_id = w.id COLLATE \"default\""
)
_WORKERS = f"SELECT w.*, (SELECT count(*) {_RUNNING_OF_W})::integer AS running FROM shoal_workers w"
_LIST_WORKERS = f"{_WORKERS} WHERE $1::text IS NULL OR w.namespace = $1 ORDER BY w.id"
_GET_WORKER = f"{_WORKERS} WHERE w.id = $1"

# The silence is tested again on the row deleted: a heartbeat that commits meanwhile keeps it.
_FORGET_WORKERS = f"""
DELETE FROM shoal_workers
WHERE last_heartbeat < $1 AND id IN (
    SELECT w.id FROM shoal_workers w
    WHERE w.last_heartbeat < $1 AND NOT EXISTS (SELECT 1 {_RUNNING_OF_W})
    LIMIT $2)
RETURNING *, 0 AS running
"""

_SAVE_SCHEDULE = """
INSERT INTO shoal_schedules (namespace, id, spec, paused, next_fire_at, last_fire_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (namespace, id) DO UPDATE SET
    spec = EXCLUDED.spec, paused = EXCLUDED.paused, next_fire_at = EXCLUDED.next_fire_at,
    last_fire_at = EXCLUDED.last_fire_at, created_at = EXCLUDED.created_at
"""

_CREATE_SCHEDULE = """
INSERT INTO shoal_schedules (namespace, id, spec, paused, next_fire_at, last_fire_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (namespace, id) DO NOTHING
"""

# A compare-and-swap on (spec, paused), which every change of a schedule changes.
_REPLACE_SCHEDULE = """
UPDATE shoal_schedules SET spec = $3, paused = $4, next_fire_at = $5, last_fire_at = $6
WHERE namespace = $1 AND id = $2 AND spec = $7 AND paused = $8
"""


def _zero() -> dict[JobState, int]:
    return dict.fromkeys(JobState, 0)


class Catalog(Base):
    """Queues, workers and schedules."""

    # --- queues -----------------------------------------------------------------------------

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        async def work(conn: Conn) -> list[QueueInfo]:
            counts: dict[str, dict[JobState, int]] = defaultdict(_zero)
            for row in await conn.fetch(
                "SELECT queue, state, count(*) AS n FROM shoal_jobs WHERE namespace = $1"
                " GROUP BY queue, state",
                namespace,
            ):
                counts[row["queue"]][JobState(row["state"])] = row["n"]
            paused = {
                row["queue"]
                for row in await conn.fetch(
                    "SELECT queue FROM shoal_paused_queues WHERE namespace = $1", namespace
                )
            }
            return [
                QueueInfo(namespace, name, name in paused, counts[name])
                for name in sorted(set(counts) | paused)
            ]

        # One snapshot for both reads.
        return await self._tx(work)

    async def set_queue_paused(self, namespace: str, queue: str, paused: bool) -> None:
        if paused:
            await self._execute(
                "INSERT INTO shoal_paused_queues (namespace, queue) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                namespace,
                queue,
            )
            return

        async def work(conn: Conn) -> None:
            status = await conn.execute(
                "DELETE FROM shoal_paused_queues WHERE namespace = $1 AND queue = $2",
                namespace,
                queue,
            )
            if row_count(status):
                await self._notify_ready(conn, [(namespace, queue)])

        await self._tx(work)

    async def purge_queue(self, namespace: str, queue: str) -> int:
        status = await self._execute(
            "DELETE FROM shoal_jobs WHERE namespace = $1 AND queue = $2"
            " AND state IN ('queued', 'scheduled')",
            namespace,
            queue,
        )
        return row_count(status)

    async def delete_queue(self, namespace: str, queue: str) -> int:
        async def work(conn: Conn) -> int:
            # Lock the queue's rows first, so a claim (SKIP LOCKED) cannot start one of them
            # between the check and the delete.
            rows = await conn.fetch(
                "SELECT id, state FROM shoal_jobs WHERE namespace = $1 AND queue = $2"
                " ORDER BY id FOR UPDATE",
                namespace,
                queue,
            )
            if any(row["state"] == JobState.RUNNING.value for row in rows):
                raise Conflict(f"queue {queue!r} has running jobs; cancel or wait for them first")
            await conn.execute(
                "DELETE FROM shoal_jobs WHERE id = ANY($1::text[])", [row["id"] for row in rows]
            )
            await conn.execute(
                "DELETE FROM shoal_paused_queues WHERE namespace = $1 AND queue = $2",
                namespace,
                queue,
            )
            return len(rows)

        return await self._tx(work)

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        rows = await self._fetch(
            "SELECT task, state, count(*) AS n FROM shoal_jobs"
            " WHERE namespace = $1 AND ($2::text IS NULL OR queue = $2) GROUP BY task, state",
            namespace,
            queue,
        )
        by_state = _zero()
        by_task: dict[str, dict[JobState, int]] = {}
        for row in rows:
            state = JobState(row["state"])
            by_state[state] += row["n"]
            by_task.setdefault(row["task"], _zero())[state] = row["n"]
        return QueueStats(by_state, by_task)

    # --- workers ----------------------------------------------------------------------------

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        await self._execute(
            _UPSERT_WORKER,
            worker.id,
            worker.namespace,
            list(worker.queues),
            worker.connected_at,
            worker.last_heartbeat,
            worker.state.value,
            list(worker.tasks),
            worker.concurrency,
            worker.language,
            worker.host,
            worker.pid,
        )

    async def touch_worker(self, worker_id: str, now: float, namespace: str | None = None) -> bool:
        status = await self._execute(
            "UPDATE shoal_workers SET last_heartbeat = $2"
            " WHERE id = $1 AND namespace = coalesce($3, namespace)",
            worker_id,
            now,
            namespace,
        )
        return row_count(status) > 0

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        row = await self._fetchrow(_GET_WORKER, worker_id)
        return to_worker(row) if row is not None else None

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        return [to_worker(row) for row in await self._fetch(_LIST_WORKERS, namespace)]

    async def delete_worker(self, worker_id: str, namespace: str | None = None) -> None:
        await self._execute(
            "DELETE FROM shoal_workers WHERE id = $1 AND namespace = coalesce($2, namespace)",
            worker_id,
            namespace,
        )

    async def forget_workers(self, silent_before: float, limit: int = 1000) -> list[WorkerInfo]:
        rows = await self._fetch(_FORGET_WORKERS, silent_before, limit)
        return [to_worker(row) for row in rows]

    # --- schedules --------------------------------------------------------------------------

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        await self._execute(_SAVE_SCHEDULE, *_schedule_row(schedule))

    async def create_schedule(self, schedule: ScheduleRecord) -> None:
        status = await self._execute(_CREATE_SCHEDULE, *_schedule_row(schedule))
        if not row_count(status):
            raise Conflict(f"schedule {schedule.id} exists in namespace {schedule.namespace!r}")

    async def replace_schedule(self, schedule: ScheduleRecord, expected: ScheduleRecord) -> bool:
        status = await self._execute(
            _REPLACE_SCHEDULE,
            schedule.namespace,
            schedule.id,
            schedule.spec,
            schedule.paused,
            schedule.next_fire_at,
            schedule.last_fire_at,
            expected.spec,
            expected.paused,
        )
        return bool(row_count(status))

    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRecord | None:
        row = await self._fetchrow(
            "SELECT * FROM shoal_schedules WHERE namespace = $1 AND id = $2",
            namespace,
            schedule_id,
        )
        return to_schedule(row) if row is not None else None

    async def list_schedules(self, namespace: str | None = None) -> list[ScheduleRecord]:
        rows = await self._fetch(
            "SELECT * FROM shoal_schedules WHERE $1::text IS NULL OR namespace = $1"
            " ORDER BY namespace, id",
            namespace,
        )
        return [to_schedule(row) for row in rows]

    async def delete_schedule(self, namespace: str, schedule_id: str) -> None:
        status = await self._execute(
            "DELETE FROM shoal_schedules WHERE namespace = $1 AND id = $2", namespace, schedule_id
        )
        if not row_count(status):
            raise NotFound(f"schedule {schedule_id} not found in namespace {namespace!r}")


def _schedule_row(schedule: ScheduleRecord) -> tuple[object, ...]:
    """A schedule's columns in table order ($1 to $7 of the statements that write one)."""
    return (
        schedule.namespace,
        schedule.id,
        schedule.spec,
        schedule.paused,
        schedule.next_fire_at,
        schedule.last_fire_at,
        schedule.created_at,
    )
