from __future__ import annotations

from collections.abc import Callable

from shoal.core import transitions
from shoal.core.errors import Conflict, NotFound
from shoal.core.model import Job, JobPage, JobQuery, JobState
from shoal.core.ports import DueResult
from shoal.stores.postgres._base import Base, Conn, key_lock, row_count
from shoal.stores.postgres._rows import UPDATE_JOB, to_job, update_values

_PROMOTE = """
WITH due AS MATERIALIZED (
    SELECT id FROM shoal_jobs WHERE state = 'scheduled' AND run_at <= $1
    ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE shoal_jobs AS j SET state = 'queued' FROM due WHERE j.id = due.id
RETURNING j.namespace, j.queue, j.run_at
"""

_PURGE = """
DELETE FROM shoal_jobs WHERE id IN (
    SELECT id FROM shoal_jobs
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < $1
    ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
_ACTIVE_HOLDER = """
SELECT id FROM shoal_jobs
WHERE namespace = $1 AND idempotency_key = $2 AND state IN ('scheduled', 'queued', 'running')
LIMIT 1
"""
_RETRYABLE = (JobState.FAILED, JobState.CANCELLED)
#: Retention deletes this many rows per transaction: short locks, little WAL per commit, and
#: autovacuum can reclaim the pages of one batch while the next is deleted.
PURGE_BATCH = 1000


class JobSteering(Base):
    """Moves asked for by people (cancel, retry, delete), time-driven moves and listings."""

    async def _steer(
        self, namespace: str, job_id: str, move: Callable[[Job], Job], announce: bool
    ) -> Job:
        async def work(conn: Conn) -> Job:
            job = await _locked(conn, namespace, job_id)
            moved = move(job)
            await conn.execute(UPDATE_JOB, *update_values(moved))
            if announce and moved.state is JobState.QUEUED:
                await self._notify_ready(conn, [(moved.namespace, moved.queue)])
            return moved

        return await self._tx(work)

    async def cancel(self, namespace: str, job_id: str, now: float) -> Job:
        return await self._steer(
            namespace, job_id, lambda job: transitions.cancel(job, now), announce=False
        )

    async def retry(self, namespace: str, job_id: str, now: float) -> Job:
        async def work(conn: Conn) -> Job:
            job = await _locked(conn, namespace, job_id)
            holder = None
            if job.idempotency_key is not None and job.state in _RETRYABLE:
                # the enqueue's lock: no job with the key can be stored until this commits
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1)", key_lock(namespace, job.idempotency_key)
                )
                holder = await conn.fetchval(_ACTIVE_HOLDER, namespace, job.idempotency_key)
            moved = transitions.retry(job, now, holder)
            await conn.execute(UPDATE_JOB, *update_values(moved))
            await self._notify_ready(conn, [(moved.namespace, moved.queue)])
            return moved

        return await self._tx(work)

    async def delete_job(self, namespace: str, job_id: str) -> None:
        async def work(conn: Conn) -> None:
            job = await _locked(conn, namespace, job_id)
            if job.state is JobState.RUNNING:
                raise Conflict(f"job {job_id} is running; cancel it first")
            await conn.execute("DELETE FROM shoal_jobs WHERE id = $1", job_id)

        await self._tx(work)

    async def promote_due(self, now: float, limit: int = 10_000) -> DueResult:
        async def work(conn: Conn) -> DueResult:
            rows = await conn.fetch(_PROMOTE, now, limit)
            ordered = sorted(rows, key=lambda row: row["run_at"])
            promoted = tuple(dict.fromkeys((row["namespace"], row["queue"]) for row in ordered))
            await self._notify_ready(conn, promoted)
            next_due = await conn.fetchval(
                "SELECT min(run_at) FROM shoal_jobs WHERE state = 'scheduled'"
            )
            return DueResult(promoted, next_due)

        return await self._tx(work)

    async def purge_finished(self, before: float, limit: int = 10_000) -> int:
        deleted = 0
        while deleted < limit:
            batch = min(PURGE_BATCH, limit - deleted)
            count = row_count(await self._execute(_PURGE, before, batch))
            deleted += count
            if count < batch:
                break
        return deleted

    async def list_jobs(self, query: JobQuery) -> JobPage:
        where = ["namespace = $1"]
        args: list[object] = [query.namespace]

        def add(clause: str, value: object) -> None:
            args.append(value)
            where.append(clause.format(f"${len(args)}"))

        if query.queue is not None:
            add("queue = {}", query.queue)
        if query.state is not None:
            add("state = {}", query.state.value)
        if query.task is not None:
            add("task = {}", query.task)
        if query.tag is not None:
            add("{} = ANY(tags)", query.tag)
        if query.created_after is not None:
            add("created_at >= {}", query.created_after)
        if query.created_before is not None:
            add("created_at < {}", query.created_before)
        if query.cursor is not None:
            add("id < {}", query.cursor)
        args.append(query.limit + 1)
        sql = (
            f"SELECT * FROM shoal_jobs WHERE {' AND '.join(where)}"
            f" ORDER BY id DESC LIMIT ${len(args)}"
        )
        rows = await self._fetch(sql, *args)
        page = tuple(to_job(row) for row in rows[: query.limit])
        more = len(rows) > query.limit
        return JobPage(page, page[-1].id if more and page else None)


async def _locked(conn: Conn, namespace: str, job_id: str) -> Job:
    row = await conn.fetchrow(
        "SELECT * FROM shoal_jobs WHERE id = $1 AND namespace = $2 FOR UPDATE", job_id, namespace
    )
    if row is None:
        raise NotFound(f"job {job_id} not found in namespace {namespace!r}")
    return to_job(row)
