"""`QueueService`: the one API every surface calls (gRPC, HTTP, TCP, dashboard, CLI, SDK).

Adapters decode, call one method here, and encode; every rule of the job model is enforced
here or in the store behind it, never in an adapter. The service is composed of parts: its
state, settings and notices (`shoal.core._service_base`), its operations on worker records
(`shoal.core._membership`) and, here, those on jobs and queues; every name is imported from
this module.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from shoal.core._membership import ResumeInput, WorkerMembership, check_resume
from shoal.core._service_base import MAX_LOOKAHEAD, QueuePolicy, ServiceSettings
from shoal.core.errors import InvalidArgument, NotFound
from shoal.core.events import Event, job_event
from shoal.core.ids import new_job_ids
from shoal.core.model import (
    Job,
    JobError,
    JobId,
    JobPage,
    JobQuery,
    JobState,
    LeaseRef,
    QueueInfo,
    QueueStats,
)
from shoal.core.ports import ClaimRequest, Enqueued, HeartbeatResult
from shoal.core.validation import (
    EnqueueRequest,
    check_enqueue,
    check_job_error,
    check_lease_ttl,
    check_name,
    check_query,
    check_retry_delay,
)

__all__ = [
    "MAX_LOOKAHEAD",
    "WAIT_RECHECK",
    "ClaimInput",
    "QueuePolicy",
    "QueueService",
    "ResumeInput",
    "ServiceSettings",
    "check_resume",
]

#: Seconds between two reads of a job waited for on a store other processes share (see
#: `QueueService.wait_for`).
WAIT_RECHECK = 0.5

#: What a heartbeat naming no lease finds.
_NOTHING_HELD = HeartbeatResult((), (), ())


@dataclass(frozen=True, slots=True)
class ClaimInput:
    """A worker asks for up to `limit` jobs, waiting up to `wait` seconds if none is ready."""

    worker_id: str
    queues: tuple[str, ...]
    namespace: str = "default"
    limit: int = 1
    wait: float = 0.0
    tasks: tuple[str, ...] | None = None
    #: The lease length; the service default when None.
    lease_ttl: float | None = None
    #: How long before its `run_at` the worker will take a job and hold it (capped by the
    #: service's `lookahead`); 0 takes only due jobs.
    lookahead: float = 0.0


class QueueService(WorkerMembership):
    """Jobs, queues, leases and workers, over one `Store`.

    Built as `QueueService(store, settings=None, clock=None, events=None)` (see `ServiceBase`).
    """

    # --- producing --------------------------------------------------------------------------

    async def enqueue(self, request: EnqueueRequest) -> Enqueued:
        """Store one job; see `enqueue_many`."""
        return (await self.enqueue_many([request]))[0]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Validate every request, then store them all in one transaction (per dedupe window).

        Nothing is stored if any request is invalid. Returns one `Enqueued` per request, in order.
        """
        limits = self.settings.limits
        if len(requests) > limits.max_batch:
            raise InvalidArgument("jobs", f"at most {limits.max_batch} jobs per call")
        for index, request in enumerate(requests):
            try:
                check_enqueue(request, limits)
            except InvalidArgument as error:
                if len(requests) == 1:
                    raise
                # which job of the batch is wrong, as HTTP's own checks say it (`jobs.1.delay`)
                reason = error.message.removeprefix(f"{error.field}: ")
                raise InvalidArgument(f"jobs.{index}.{error.field}", reason) from None
        now = self.clock.now()
        ids = new_job_ids(len(requests))
        jobs = [self._new_job(r, now, job_id) for r, job_id in zip(requests, ids, strict=True)]
        results: list[Enqueued] = []
        pairs = zip(requests, jobs, strict=True)
        for window, group in groupby(pairs, key=lambda pair: pair[0].dedupe_window):
            results += await self._store_new([job for _, job in group], now, window)
        return results

    async def _store_new(self, jobs: list[Job], now: float, window: float) -> list[Enqueued]:
        if self.store.supports_notify or not self.ready.waiting:
            return await self._store_and_announce(jobs, now, window)
        # Claimers wait: wake them as soon as the enqueue is submitted, not once it commits.
        # A store without notify serves one process and runs operations in the order they are
        # submitted (SQLite: one writer queue; memory: no await inside), so their claims run
        # after the enqueue, often in its very transaction: the job starts one commit sooner.
        # Nothing is acknowledged early: the claim's own commit hands the job out. The notice
        # after the commit stays (`_announce_enqueued`), for a claim that looked too soon. The
        # task announces the jobs in the loop turn the commit is reported in, ahead of the
        # claim that committed with them: `job.enqueued` still comes before `job.claimed`.
        stored = asyncio.ensure_future(self._store_and_announce(jobs, now, window))
        self._wake_claimers(jobs, now)
        return await stored

    async def _store_and_announce(
        self, jobs: list[Job], now: float, window: float
    ) -> list[Enqueued]:
        results = await self.store.enqueue(jobs, now, window)
        self._announce_enqueued(results, now)
        return results

    def _new_job(self, request: EnqueueRequest, now: float, job_id: JobId) -> Job:
        policy = self.settings.policy(request.queue)
        if request.run_at is not None:
            run_at = request.run_at
        else:
            run_at = now + (request.delay or 0.0)
        return Job(
            id=job_id,
            namespace=request.namespace,
            queue=request.queue,
            task=request.task,
            payload=request.payload,
            content_type=request.content_type,
            state=JobState.SCHEDULED if run_at > now else JobState.QUEUED,
            created_at=now,
            run_at=run_at,
            priority=request.priority,
            max_attempts=request.max_attempts or policy.max_attempts,
            backoff=(request.backoff or policy.backoff).encode(),
            timeout=request.timeout if request.timeout is not None else policy.timeout,
            idempotency_key=request.idempotency_key,
            tags=tuple(request.tags),
            parent_id=request.parent_id,
            schedule_id=request.schedule_id,
        )

    def _announce_enqueued(self, results: Sequence[Enqueued], now: float) -> None:
        self._wake_claimers((item.job for item in results if item.created), now)
        if any(item.created and item.job.state is JobState.SCHEDULED for item in results):
            self._scheduled()
        if self.events.wants("job.enqueued"):
            for item in results:
                if item.created:
                    self.events.publish(job_event("job.enqueued", item.job, now))

    # --- reading ----------------------------------------------------------------------------

    async def get(self, namespace: str, job_id: str) -> Job:
        """The job, or `NotFound`."""
        job = await self.store.get_job(namespace, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found in namespace {namespace!r}")
        return job

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """A page of jobs, newest first; pass `next_cursor` back as `cursor` for the next."""
        check_query(query, self.settings.limits)
        return await self.store.list_jobs(query)

    async def wait_for(self, namespace: str, job_id: str, timeout: float) -> Job:
        """The job once it is finished, or as it is when `timeout` seconds have passed.

        Job events stay in the process they happen in: on a store other processes share
        (PostgreSQL replicas), the job is read again every `WAIT_RECHECK` seconds, since
        another replica may finish it.
        """
        subscription = self.events.subscribe(lambda event: event.job_id == job_id)
        recheck = WAIT_RECHECK if self.store.supports_notify else math.inf
        try:
            deadline = self.clock.now() + max(timeout, 0.0)
            while True:
                job = await self.get(namespace, job_id)
                remaining = deadline - self.clock.now()
                if job.is_terminal or remaining <= 0:
                    return job
                await subscription.next(min(remaining, recheck))
        finally:
            subscription.close()

    # --- steering ---------------------------------------------------------------------------

    async def cancel(self, namespace: str, job_id: str) -> Job:
        """Cancel a waiting job at once; a running one becomes cancel-requested and its worker
        is told (event `job.cancel_requested`, and the next heartbeat's answer).
        """
        now = self.clock.now()
        job = await self.store.cancel(namespace, job_id, now)
        kind = "job.cancelled" if job.state is JobState.CANCELLED else "job.cancel_requested"
        self.events.publish(job_event(kind, job, now))
        return job

    async def retry(self, namespace: str, job_id: str) -> Job:
        """Queue a failed or cancelled job again."""
        now = self.clock.now()
        job = await self.store.retry(namespace, job_id, now)
        self.ready.notify(job.namespace, job.queue)
        self._publish("job.retried", job, now)
        return job

    async def delete(self, namespace: str, job_id: str) -> None:
        """Remove a job that is not running."""
        await self.store.delete_job(namespace, job_id)
        self.events.publish(
            Event("job.deleted", namespace=namespace, at=self.clock.now(), job_id=job_id)
        )

    # --- queues -----------------------------------------------------------------------------

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        """The queues of a namespace with their counts."""
        return await self.store.list_queues(check_name("namespace", namespace))

    async def pause_queue(self, namespace: str, queue: str) -> None:
        """Stop handing out the queue's jobs; enqueues still land."""
        await self.store.set_queue_paused(
            check_name("namespace", namespace), check_name("queue", queue), True
        )
        self._publish_queue("queue.paused", namespace, queue)

    async def resume_queue(self, namespace: str, queue: str) -> None:
        """Hand out the queue's jobs again."""
        await self.store.set_queue_paused(
            check_name("namespace", namespace), check_name("queue", queue), False
        )
        self.ready.notify(namespace, queue)
        self._publish_queue("queue.resumed", namespace, queue)

    async def purge_queue(self, namespace: str, queue: str) -> int:
        """Delete the queue's waiting jobs; the count."""
        count = await self.store.purge_queue(
            check_name("namespace", namespace), check_name("queue", queue)
        )
        self._publish_queue("queue.purged", namespace, queue)
        return count

    async def delete_queue(self, namespace: str, queue: str) -> int:
        """Delete the queue and its jobs (refused while any runs); the count of jobs."""
        count = await self.store.delete_queue(
            check_name("namespace", namespace), check_name("queue", queue)
        )
        self._publish_queue("queue.deleted", namespace, queue)
        return count

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        """Counts by state and by task."""
        return await self.store.stats(check_name("namespace", namespace), queue)

    # --- working ----------------------------------------------------------------------------

    async def claim(self, request: ClaimInput) -> list[Job]:
        """Lease up to `limit` jobs, waiting up to `wait` seconds for one to be ready."""
        if not request.queues:
            raise InvalidArgument("queues", "name at least one queue")
        for queue in request.queues:
            check_name("queues", queue)
        check_name("worker_id", request.worker_id)
        if request.limit < 1:
            raise InvalidArgument("limit", "must be at least 1")
        if not 0 <= request.lookahead < math.inf:  # NaN fails both comparisons
            raise InvalidArgument("lookahead", "must be a finite number >= 0")
        check_lease_ttl(request.lease_ttl)
        lookahead = min(request.lookahead, self.settings.lookahead)
        lease_ttl = request.lease_ttl or self.settings.lease_ttl
        deadline = self.clock.now() + max(request.wait, 0.0)
        while True:
            now = self.clock.now()
            seen = self.ready.generation
            jobs = await self.store.claim(
                ClaimRequest(
                    namespace=request.namespace,
                    queues=request.queues,
                    worker_id=request.worker_id,
                    limit=min(request.limit, self.settings.limits.max_batch),
                    lease_ttl=lease_ttl,
                    now=now,
                    tasks=request.tasks,
                    lookahead=lookahead,
                )
            )
            if jobs or now >= deadline:
                break
            if self.ready.generation != seen:
                continue  # something became ready while the claim ran: look again
            await self.ready.wait(
                request.namespace, request.queues, deadline - now, ahead=lookahead > 0
            )
        if jobs and self.events.wants("job.claimed"):
            for job in jobs:
                self.events.publish(job_event("job.claimed", job, now))
        return jobs

    async def heartbeat(
        self,
        leases: Sequence[LeaseRef],
        worker_id: str | None = None,
        *,
        lease_ttl: float | None = None,
        namespace: str | None = None,
    ) -> HeartbeatResult:
        """Renew leases (all of a worker's at once) by `lease_ttl` (the service's by default;
        a lease is never cut) and refresh the worker's heartbeat: that of its record in
        `namespace` only, when given (a pull worker chooses its id, and ids may repeat across
        namespaces).
        """
        check_lease_ttl(lease_ttl)
        now = self.clock.now()
        result = (  # an idle worker's heartbeat only refreshes its record: one store call
            await self.store.heartbeat(leases, lease_ttl or self.settings.lease_ttl, now)
            if leases
            else _NOTHING_HELD
        )
        if worker_id is not None:
            await self.store.touch_worker(worker_id, now, namespace)
        return result

    async def complete(self, lease: LeaseRef, result: bytes | None = None) -> Job:
        """The job succeeded. `LeaseLost` if the lease is stale."""
        now = self.clock.now()
        job = await self.store.complete(lease, result, now)
        self._publish("job.succeeded", job, now)
        return job

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None = None) -> Job:
        """The attempt failed; the job retries per its policy (or after `retry_delay`)."""
        check_retry_delay(retry_delay)
        check_job_error(error)
        now = self.clock.now()
        job = await self.store.fail(lease, error, now, retry_delay)
        kind = {
            JobState.SCHEDULED: "job.retrying",
            JobState.FAILED: "job.failed",
            JobState.CANCELLED: "job.cancelled",
        }[job.state]
        if job.state is JobState.SCHEDULED:
            self._scheduled()
        self._publish(kind, job, now)
        return job

    async def release(self, leases: Sequence[LeaseRef]) -> list[Job]:
        """Give unstarted jobs back; their attempt does not count."""
        now = self.clock.now()
        jobs = await self.store.release(leases, now)
        self._requeued(jobs, now)
        return jobs

    async def set_progress(self, lease: LeaseRef, progress: float) -> None:
        """Record a running job's progress, 0 to 1."""
        if not 0.0 <= progress <= 1.0:
            raise InvalidArgument("progress", "must be between 0 and 1")
        await self.store.set_progress(lease, progress)

    async def reap_expired(self) -> list[Job]:
        """Take back the jobs whose lease expired."""
        now = self.clock.now()
        jobs = await self.store.reap_expired(now)
        self._requeued(jobs, now)
        return jobs
