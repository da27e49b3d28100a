"""The memory store: the `Store` operations on jobs and queues, over `JobHeaps` (the jobs and
their indexes); workers, schedules and leader leases are in `_records`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from shoal.core import transitions
from shoal.core.errors import Conflict, LeaseLost, NotFound, Unavailable
from shoal.core.events import Event
from shoal.core.model import (
    TERMINAL_STATES,
    WAITING_STATES,
    Job,
    JobError,
    JobPage,
    JobQuery,
    JobState,
    LeaseRef,
    QueueInfo,
    QueueStats,
)
from shoal.core.ports import (
    BroadcastListener,
    ClaimRequest,
    DueResult,
    Enqueued,
    HeartbeatResult,
    ReadyListener,
    Resumed,
    WorkerResume,
)
from shoal.stores.memory._heaps import JobHeaps
from shoal.stores.memory._identity import MemoryIdentity
from shoal.stores.memory._records import MemoryRecords


class MemoryStore(JobHeaps, MemoryRecords, MemoryIdentity):
    """A complete store in process memory: fast, and gone when the process ends.

    Every method runs without awaiting, so on one event loop each is atomic. The jobs and the
    heaps claims take them from are kept by `JobHeaps`.
    """

    supports_notify = False

    def __init__(self) -> None:
        super().__init__()
        self._closed = False

    async def open(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True

    def set_ready_listener(self, listener: ReadyListener) -> None:
        """Nothing else can make jobs ready in this store; the listener is never called."""

    def set_broadcast_listener(self, listener: BroadcastListener) -> None:
        """No other process shares this store; the listener is never called."""

    async def broadcast(self, event: Event) -> None:
        """No other process shares this store: nobody to tell."""

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("store is closed")

    def _lookup(self, namespace: str, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.namespace != namespace:
            raise NotFound(f"job {job_id} not found in namespace {namespace!r}")
        return job

    def _leased(self, lease: LeaseRef) -> Job:
        job = self._jobs.get(lease.job_id)
        if job is None:
            raise LeaseLost(f"lease on job {lease.job_id} is not held (no such job)")
        return job

    # --- jobs -------------------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[Job], now: float, dedupe_window: float = 0.0
    ) -> list[Enqueued]:
        self._check_open()
        out: list[Enqueued] = []
        for job in jobs:
            if job.idempotency_key is not None:
                key = (job.namespace, job.idempotency_key)
                existing = self._key_holder(key, now - dedupe_window)
                if existing is not None:
                    out.append(Enqueued(existing, created=False))
                    continue
                self._keep_key(key, job.id)
            out.append(Enqueued(self._put(job), created=True))
        return out

    async def get_job(self, namespace: str, job_id: str) -> Job | None:
        self._check_open()
        job = self._jobs.get(job_id)
        return job if job is not None and job.namespace == namespace else None

    async def list_jobs(self, query: JobQuery) -> JobPage:
        self._check_open()
        matches = sorted(
            (job for job in self._jobs.values() if _matches(job, query)),
            key=lambda job: job.id,
            reverse=True,
        )
        page = tuple(matches[: query.limit])
        more = len(matches) > query.limit
        return JobPage(page, page[-1].id if more and page else None)

    async def claim(self, request: ClaimRequest) -> list[Job]:
        self._check_open()
        self._promote(request.now)
        claimed = self._take_due(request)
        if len(claimed) < request.limit and request.lookahead > 0:
            claimed += self._take_ahead(request, request.limit - len(claimed))
        return claimed

    async def heartbeat(
        self, leases: Sequence[LeaseRef], lease_ttl: float, now: float
    ) -> HeartbeatResult:
        self._check_open()
        renewed: list[str] = []
        lost: list[str] = []
        cancelled: list[str] = []
        for lease in leases:
            job = self._jobs.get(lease.job_id)
            if job is None or job.state is not JobState.RUNNING or job.lease_token != lease.token:
                lost.append(lease.job_id)
                continue
            self._jobs[job.id] = transitions.renew(job, lease.token, now, lease_ttl)
            renewed.append(job.id)
            if job.cancel_requested:
                cancelled.append(job.id)
        return HeartbeatResult(tuple(renewed), tuple(lost), tuple(cancelled))

    async def complete(self, lease: LeaseRef, result: bytes | None, now: float) -> Job:
        self._check_open()
        job = transitions.complete(self._leased(lease), lease.token, result, now)
        self._jobs[job.id] = job
        return job

    async def fail(
        self, lease: LeaseRef, error: JobError, now: float, retry_delay: float | None = None
    ) -> Job:
        self._check_open()
        job = transitions.fail(self._leased(lease), lease.token, error, now, retry_delay)
        return self._put(job)

    async def release(self, leases: Sequence[LeaseRef], now: float) -> list[Job]:
        self._check_open()
        out: list[Job] = []
        for lease in leases:
            job = self._jobs.get(lease.job_id)
            if job is None or job.state is not JobState.RUNNING or job.lease_token != lease.token:
                continue
            out.append(self._put(transitions.release(job, lease.token, now)))
        return out

    async def release_worker(
        self, worker_id: str, now: float, reason: str, namespace: str | None = None
    ) -> list[Job]:
        self._check_open()
        held = [
            job
            for job in self._jobs.values()
            if job.state is JobState.RUNNING
            and job.worker_id == worker_id
            and namespace in (None, job.namespace)
        ]
        return [self._put(transitions.lose_lease(job, now, reason)) for job in held]

    async def resume_worker(self, resume: WorkerResume, now: float) -> Resumed:
        self._check_open()
        kept: list[Job] = []
        for lease in resume.held:
            job = self._jobs.get(lease.job_id)
            if job is None or job.namespace != resume.namespace:
                continue
            if job.state is JobState.RUNNING and job.lease_token == lease.token:
                job = transitions.hand_over(job, lease.token, resume.worker_id)
                self._jobs[job.id] = job
                kept.append(job)
        dropped = sorted(
            (
                job
                for job in self._jobs.values()
                if job.state is JobState.RUNNING
                and job.worker_id == resume.previous_worker_id
                and job.namespace == resume.namespace
            ),
            key=lambda job: job.id,
        )
        released = [
            self._put(transitions.release(job, job.lease_token or "", now)) for job in dropped
        ]
        return Resumed(tuple(kept), tuple(released))

    async def reap_expired(self, now: float, limit: int = 1000) -> list[Job]:
        self._check_open()
        expired = [
            job
            for job in self._jobs.values()
            if job.state is JobState.RUNNING
            and job.lease_expires_at is not None
            and job.lease_expires_at < now
        ][:limit]
        return [self._put(transitions.lose_lease(job, now, "lease expired")) for job in expired]

    async def set_progress(self, lease: LeaseRef, progress: float) -> None:
        self._check_open()
        job = self._leased(lease)
        transitions.check_lease(job, lease.token)
        self._jobs[job.id] = replace(job, progress=progress)

    async def cancel(self, namespace: str, job_id: str, now: float) -> Job:
        self._check_open()
        job = transitions.cancel(self._lookup(namespace, job_id), now)
        self._jobs[job.id] = job
        return job

    async def retry(self, namespace: str, job_id: str, now: float) -> Job:
        self._check_open()
        job = self._lookup(namespace, job_id)
        holder = None
        if job.idempotency_key is not None:
            # with no window, only an active job holds the key
            found = self._key_holder((namespace, job.idempotency_key), math.inf)
            holder = found.id if found is not None else None
        return self._put(transitions.retry(job, now, holder))

    async def delete_job(self, namespace: str, job_id: str) -> None:
        self._check_open()
        job = self._lookup(namespace, job_id)
        if job.state is JobState.RUNNING:
            raise Conflict(f"job {job_id} is running; cancel it first")
        self._forget(job)

    async def promote_due(self, now: float, limit: int = 10_000) -> DueResult:
        self._check_open()
        promoted = self._promote(now)
        queues = tuple(dict.fromkeys((job.namespace, job.queue) for job in promoted))
        return DueResult(queues, self._next_due())

    async def purge_finished(self, before: float, limit: int = 10_000) -> int:
        self._check_open()
        old = [
            job
            for job in self._jobs.values()
            if job.state in TERMINAL_STATES
            and job.finished_at is not None
            and job.finished_at < before
        ][:limit]
        for job in old:
            self._forget(job)
        return len(old)

    # --- queues -----------------------------------------------------------------------------

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        self._check_open()
        counts: dict[str, dict[JobState, int]] = defaultdict(lambda: dict.fromkeys(JobState, 0))
        for job in self._jobs.values():
            if job.namespace == namespace:
                counts[job.queue][job.state] += 1
        for ns, queue in self._paused:
            if ns == namespace:
                counts[queue]
        return [
            QueueInfo(namespace, name, (namespace, name) in self._paused, counts[name])
            for name in sorted(counts)
        ]

    async def set_queue_paused(self, namespace: str, queue: str, paused: bool) -> None:
        self._check_open()
        if paused:
            self._paused.add((namespace, queue))
        else:
            self._paused.discard((namespace, queue))

    async def purge_queue(self, namespace: str, queue: str) -> int:
        self._check_open()
        doomed = [job for job in self._queue_jobs(namespace, queue) if job.state in WAITING_STATES]
        self._drop_queue(namespace, queue)
        for job in doomed:
            self._forget(job)
        return len(doomed)

    async def delete_queue(self, namespace: str, queue: str) -> int:
        self._check_open()
        jobs = list(self._queue_jobs(namespace, queue))
        if any(job.state is JobState.RUNNING for job in jobs):
            raise Conflict(f"queue {queue!r} has running jobs; cancel or wait for them first")
        self._drop_queue(namespace, queue)
        for job in jobs:
            self._forget(job)
        self._paused.discard((namespace, queue))
        return len(jobs)

    def _queue_jobs(self, namespace: str, queue: str) -> Iterable[Job]:
        return [j for j in self._jobs.values() if j.namespace == namespace and j.queue == queue]

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        self._check_open()
        by_state = dict.fromkeys(JobState, 0)
        by_task: dict[str, dict[JobState, int]] = {}
        for job in self._jobs.values():
            if job.namespace != namespace or (queue is not None and job.queue != queue):
                continue
            by_state[job.state] += 1
            by_task.setdefault(job.task, dict.fromkeys(JobState, 0))[job.state] += 1
        return QueueStats(by_state, by_task)


def _matches(job: Job, query: JobQuery) -> bool:
    return (
        job.namespace == query.namespace
        and (query.queue is None or job.queue == query.queue)
        and (query.state is None or job.state is query.state)
        and (query.task is None or job.task == query.task)
        and (query.tag is None or query.tag in job.tags)
        and (query.created_after is None or job.created_at >= query.created_after)
        and (query.created_before is None or job.created_at < query.created_before)
        and (query.cursor is None or job.id < query.cursor)
    )
