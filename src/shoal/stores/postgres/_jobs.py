from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shoal.core import transitions
from shoal.core.errors import LeaseLost
from shoal.core.model import Job, JobError, JobState, LeaseRef
from shoal.core.ports import ClaimRequest, Enqueued, HeartbeatResult, Resumed, WorkerResume
from shoal.stores.postgres._base import Base, Conn, key_lock
from shoal.stores.postgres._batch import COMPLETE_MANY, CompletionBatcher
from shoal.stores.postgres._rows import (
    JOB_COLUMNS,
    UPDATE_JOB,
    claim_order,
    job_values,
    to_job,
    update_values,
)

_INSERT = "INSERT INTO shoal_jobs ({}) VALUES ({})".format(
    ", ".join(JOB_COLUMNS), ", ".join(f"${i}" for i in range(1, len(JOB_COLUMNS) + 1))
)
#: How many scheduled jobs a claim reads, of those already due and of those due within its
#: lookahead: the oldest, of every queue (see the SQLite store's `SCHEDULED_SCAN`).
SCHEDULED_SCAN = 128
#: Batches up to this size go in as one INSERT per job (pipelined); bigger ones by COPY.
_COPY_FROM = 8

_ACTIVE_KEYED = """
SELECT DISTINCT ON (namespace, idempotency_key) * FROM shoal_jobs
WHERE (namespace, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
  AND (state IN ('scheduled', 'queued', 'running') OR created_at >= $3)
ORDER BY namespace, idempotency_key, state IN ('scheduled', 'queued', 'running') DESC, id DESC
"""

# The lease of the picked jobs. Its guard is checked again against the latest version of a row
# that changed since the statement's snapshot (READ COMMITTED): a job another claimer took, or
# failed back to `scheduled` with a later run_at, meanwhile, is left out. {horizon}: the latest
# run_at the claim may take.
_LEASE = """
UPDATE shoal_jobs AS j
SET state = 'running', worker_id = $6, lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = $3 + $7, attempt = j.attempt + 1, started_at = $3
FROM picked
WHERE j.id = picked.id AND j.state IN ('queued', 'scheduled') AND j.run_at <= {horizon}
RETURNING j.*
"""

# The claim's scheduled jobs among the earliest SCHEDULED_SCAN of every queue (see migration
# 0003), those with {terms} on run_at, locked by id in {order}, skipping rows another claimer
# holds before the limit counts them. The state and run_at terms are checked again against a
# row that changed since the snapshot; written as expressions so that no index but the id's
# serves this read (the planner would read a whole range of another).
_SCHEDULED = """
    SELECT id, priority, run_at FROM shoal_jobs
    WHERE id = ANY(ARRAY(
        SELECT e.id FROM shoal_earliest_scheduled({scan}) AS e
        WHERE {terms} AND e.namespace = $1 AND e.queue = ANY($2::text[])
          AND ($4::text[] IS NULL OR e.task = ANY($4::text[]))
          AND e.queue NOT IN (SELECT p.queue FROM shoal_paused_queues p WHERE p.namespace = $1)
    ))
      AND (state || '') = 'scheduled' AND {recheck}
    ORDER BY {order}
    LIMIT $5
    FOR UPDATE SKIP LOCKED
"""


def _scheduled(terms: str, order: str) -> str:
    recheck = terms.replace("e.run_at", "run_at + 0")
    return _SCHEDULED.format(scan=SCHEDULED_SCAN, terms=terms, recheck=recheck, order=order)


# Per queue, the first `limit` queued jobs in claim order, locked, skipping rows another claimer
# holds; the best `limit` scheduled jobs already due; then the best `limit` of all those.
# MATERIALIZED makes the locking run once.
_CLAIM = f"""
WITH queued AS MATERIALIZED (
    SELECT c.id, c.priority, c.run_at FROM unnest($2::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, priority, run_at FROM shoal_jobs
        WHERE namespace = $1 AND queue = q.name AND state = 'queued' AND run_at <= $3
          AND ($4::text[] IS NULL OR task = ANY($4::text[]))
          AND NOT EXISTS (
              SELECT 1 FROM shoal_paused_queues p WHERE p.namespace = $1 AND p.queue = q.name
          )
        ORDER BY priority DESC, run_at, id
        LIMIT $5
        FOR UPDATE SKIP LOCKED
    ) AS c
), due AS MATERIALIZED ({_scheduled("e.run_at <= $3", "priority DESC, run_at, id")}
), picked AS (
    SELECT id FROM (SELECT * FROM queued UNION ALL SELECT * FROM due) AS c
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT $5
){_LEASE.format(horizon="$3")}"""

# Scheduled jobs due within the lookahead ($8 is its end), earliest first.
_CLAIM_AHEAD = f"""
WITH picked AS MATERIALIZED ({_scheduled("e.run_at > $3 AND e.run_at <= $8", "run_at, id")}
){_LEASE.format(horizon="$8")}"""

_HEARTBEAT = """
UPDATE shoal_jobs AS j SET lease_expires_at = GREATEST(j.lease_expires_at, $3)
FROM unnest($1::text[], $2::text[]) AS l(id, token)
WHERE j.id = l.id AND j.state = 'running' AND j.lease_token = l.token
RETURNING j.id, j.lease_token, j.cancel_requested
"""


class JobLeases(Base):
    """Enqueue, claim and the lease moves."""

    def __init__(self, origin: str) -> None:
        super().__init__(origin)
        self._completions = CompletionBatcher(self._complete_many)

    async def enqueue(
        self, jobs: Sequence[Job], now: float, dedupe_window: float = 0.0
    ) -> list[Enqueued]:
        if not jobs:
            self._live_pool()
            return []

        async def work(conn: Conn) -> list[Enqueued]:
            existing = await self._existing_keys(conn, jobs, now - dedupe_window)
            out: list[Enqueued] = []
            new: list[Job] = []
            for job in jobs:
                if job.idempotency_key is not None:
                    key = (job.namespace, job.idempotency_key)
                    if key in existing:
                        out.append(Enqueued(existing[key], created=False))
                        continue
                    existing[key] = job
                new.append(job)
                out.append(Enqueued(job, created=True))
            if len(new) >= _COPY_FROM:
                await conn.copy_records_to_table(
                    "shoal_jobs", records=[job_values(j) for j in new], columns=JOB_COLUMNS
                )
            elif new:
                await conn.executemany(_INSERT, [job_values(j) for j in new])
            ready = [(j.namespace, j.queue) for j in new if j.state is JobState.QUEUED]
            await self._notify_ready(conn, ready)
            return out

        return await self._tx(work)

    async def _existing_keys(
        self, conn: Conn, jobs: Sequence[Job], since: float
    ) -> dict[tuple[str, str], Job]:
        """The jobs that hold the batch's idempotency keys, after locking those keys until
        commit, so that concurrent enqueuers of one key (in any process) take turns.
        """
        keys = sorted(
            {(j.namespace, j.idempotency_key) for j in jobs if j.idempotency_key is not None}
        )
        if not keys:
            return {}
        locks = sorted({key_lock(ns, key) for ns, key in keys})
        await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", locks)
        rows = await conn.fetch(
            _ACTIVE_KEYED, [ns for ns, _ in keys], [key for _, key in keys], since
        )
        return {(row["namespace"], row["idempotency_key"]): to_job(row) for row in rows}

    async def get_job(self, namespace: str, job_id: str) -> Job | None:
        row = await self._fetchrow(
            "SELECT * FROM shoal_jobs WHERE id = $1 AND namespace = $2", job_id, namespace
        )
        return to_job(row) if row is not None else None

    async def claim(self, request: ClaimRequest) -> list[Job]:
        queues = list(dict.fromkeys(request.queues))
        if request.limit < 1 or not queues:
            self._live_pool()
            return []
        args = (
            request.namespace,
            queues,
            request.now,
            list(request.tasks) if request.tasks is not None else None,
            request.limit,
            request.worker_id,
            request.lease_ttl,
        )
        jobs = sorted((to_job(row) for row in await self._fetch(_CLAIM, *args)), key=claim_order)
        room = request.limit - len(jobs)
        if room > 0 and request.lookahead > 0:
            horizon = request.now + request.lookahead
            ahead = await self._fetch(_CLAIM_AHEAD, *args[:4], room, *args[5:], horizon)
            jobs += sorted((to_job(row) for row in ahead), key=lambda job: (job.run_at, job.id))
        return jobs

    async def heartbeat(
        self, leases: Sequence[LeaseRef], lease_ttl: float, now: float
    ) -> HeartbeatResult:
        rows = await self._fetch(
            _HEARTBEAT,
            [lease.job_id for lease in leases],
            [lease.token for lease in leases],
            now + lease_ttl,
        )
        live = {(row["id"], row["lease_token"]): row["cancel_requested"] for row in rows}
        renewed: list[str] = []
        lost: list[str] = []
        cancelled: list[str] = []
        for lease in leases:
            key = (lease.job_id, lease.token)
            if key not in live:
                lost.append(lease.job_id)
                continue
            renewed.append(lease.job_id)
            if live[key]:
                cancelled.append(lease.job_id)
        return HeartbeatResult(tuple(renewed), tuple(lost), tuple(cancelled))

    async def complete(self, lease: LeaseRef, result: bytes | None, now: float) -> Job:
        self._live_pool()
        return await self._completions.complete(lease, result, now)

    async def _complete_many(self, args: Sequence[object]) -> list[asyncpg.Record]:
        return await self._fetch(COMPLETE_MANY, *args)

    async def fail(
        self, lease: LeaseRef, error: JobError, now: float, retry_delay: float | None = None
    ) -> Job:
        async def work(conn: Conn) -> Job:
            row = await conn.fetchrow(
                "SELECT * FROM shoal_jobs WHERE id = $1 FOR UPDATE", lease.job_id
            )
            if row is None:
                raise LeaseLost(f"lease on job {lease.job_id} is not held (no such job)")
            job = transitions.fail(to_job(row), lease.token, error, now, retry_delay)
            await conn.execute(UPDATE_JOB, *update_values(job))
            return job

        return await self._tx(work)

    async def release(self, leases: Sequence[LeaseRef], now: float) -> list[Job]:
        if not leases:
            self._live_pool()
            return []

        async def work(conn: Conn) -> list[Job]:
            rows = await conn.fetch(
                "SELECT * FROM shoal_jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                list({lease.job_id for lease in leases}),
            )
            current = {row["id"]: to_job(row) for row in rows}
            out: list[Job] = []
            for lease in leases:
                job = current.get(lease.job_id)
                if job is None or job.state is not JobState.RUNNING:
                    continue
                if job.lease_token != lease.token:
                    continue
                current[job.id] = moved = transitions.release(job, lease.token, now)
                out.append(moved)
            await self._write(conn, out)
            return out

        return await self._tx(work)

    async def release_worker(
        self, worker_id: str, now: float, reason: str, namespace: str | None = None
    ) -> list[Job]:
        sql = (
            "SELECT * FROM shoal_jobs WHERE state = 'running' AND worker_id = $1"
            " AND namespace = coalesce($2, namespace) ORDER BY id FOR UPDATE"
        )
        return await self._lose_leases(sql, (worker_id, namespace), now, reason)

    async def resume_worker(self, resume: WorkerResume, now: float) -> Resumed:
        held = {lease.job_id: lease.token for lease in resume.held}

        async def work(conn: Conn) -> Resumed:
            rows = await conn.fetch(
                "SELECT * FROM shoal_jobs WHERE namespace = $1 AND state = 'running'"
                " AND (worker_id = $2 OR id = ANY($3::text[])) ORDER BY id FOR UPDATE",
                resume.namespace,
                resume.previous_worker_id,
                list(held),
            )
            kept: list[Job] = []
            back: list[Job] = []
            for job in map(to_job, rows):
                token = job.lease_token or ""
                if held.get(job.id) == token:
                    kept.append(transitions.hand_over(job, token, resume.worker_id))
                elif job.worker_id == resume.previous_worker_id:
                    back.append(transitions.release(job, token, now))
            await self._write(conn, [*kept, *back])
            return Resumed(tuple(kept), tuple(back))

        return await self._tx(work)

    async def reap_expired(self, now: float, limit: int = 1000) -> list[Job]:
        # SKIP LOCKED: a job locked right now is being completed or failed by its worker.
        sql = (
            "SELECT * FROM shoal_jobs WHERE state = 'running' AND lease_expires_at < $1"
            " ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        )
        return await self._lose_leases(sql, (now, limit), now, "lease expired")

    async def _lose_leases(
        self, select: str, args: tuple[object, ...], now: float, reason: str
    ) -> list[Job]:
        async def work(conn: Conn) -> list[Job]:
            rows = await conn.fetch(select, *args)
            moved = [transitions.lose_lease(to_job(row), now, reason) for row in rows]
            await self._write(conn, moved)
            return moved

        return await self._tx(work)

    async def _write(self, conn: Conn, jobs: Sequence[Job]) -> None:
        """Store jobs a transition moved, and announce those that became ready."""
        if not jobs:
            return
        await conn.executemany(UPDATE_JOB, [update_values(job) for job in jobs])
        ready = [(j.namespace, j.queue) for j in jobs if j.state is JobState.QUEUED]
        await self._notify_ready(conn, ready)

    async def set_progress(self, lease: LeaseRef, progress: float) -> None:
        status = await self._execute(
            "UPDATE shoal_jobs SET progress = $3"
            " WHERE id = $1 AND state = 'running' AND lease_token = $2",
            lease.job_id,
            lease.token,
            progress,
        )
        if status != "UPDATE 1":
            raise LeaseLost(f"lease on job {lease.job_id} is not held")
