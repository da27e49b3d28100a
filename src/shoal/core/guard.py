"""`GuardedService`: the `QueueService` as one caller may use it.

A surface authenticates a caller, wraps the service for that principal, and calls only the
wrapper; each method checks the right its action needs before it runs, so no adapter can forget a
check, and gRPC, HTTP, TCP and the dashboard enforce the very same table.

Outcomes of a lease (heartbeat, complete, fail, release, progress) need the `work` right in the
job's namespace. A principal with `work` on `*` (the usual worker token, and everyone when auth is
off) skips the lookup of that namespace, which keeps the hot path free of an extra read.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.core.auth import ALL_NAMESPACES, Action, Authorizer, Principal
from shoal.core.errors import PermissionDenied, Unauthenticated
from shoal.core.model import (
    Job,
    JobError,
    JobPage,
    JobQuery,
    LeaseRef,
    QueueInfo,
    QueueStats,
    WorkerInfo,
)
from shoal.core.ports import Enqueued, HeartbeatResult, Resumed
from shoal.core.service import ClaimInput, QueueService, ResumeInput
from shoal.core.validation import EnqueueRequest

__all__ = ["GuardedService"]


class GuardedService:
    """The service's operations, each allowed only if `principal` holds the right."""

    def __init__(self, service: QueueService, principal: Principal, authorizer: Authorizer) -> None:
        self.service = service
        self.principal = principal
        self.authorizer = authorizer

    def _require(self, action: Action, namespace: str) -> None:
        self.authorizer.require(self.principal, action, namespace)

    async def _require_work_on(self, leases: Sequence[LeaseRef]) -> None:
        self.authorizer.require_live(self.principal)  # revoked: Unauthenticated, as elsewhere
        if self.authorizer.allows(self.principal, Action.WORK, ALL_NAMESPACES):
            return
        namespaces = [
            ns
            for ns in sorted(self.principal.namespaces())
            if self.authorizer.allows(self.principal, Action.WORK, ns)
        ]
        for lease in leases:
            for namespace in namespaces:
                if await self.service.store.get_job(namespace, lease.job_id) is not None:
                    break
            else:
                raise PermissionDenied(f"{self.principal.name} may not work on job {lease.job_id}")

    # --- producing and reading --------------------------------------------------------------

    async def enqueue(self, request: EnqueueRequest) -> Enqueued:
        """`QueueService.enqueue` (right: enqueue)."""
        self._require(Action.ENQUEUE, request.namespace)
        return await self.service.enqueue(request)

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """`QueueService.enqueue_many` (right: enqueue in every namespace named)."""
        for namespace in {request.namespace for request in requests}:
            self._require(Action.ENQUEUE, namespace)
        return await self.service.enqueue_many(requests)

    async def get(self, namespace: str, job_id: str) -> Job:
        """`QueueService.get` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.service.get(namespace, job_id)

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """`QueueService.list_jobs` (right: read)."""
        self._require(Action.READ, query.namespace)
        return await self.service.list_jobs(query)

    async def wait_for(self, namespace: str, job_id: str, timeout: float) -> Job:
        """`QueueService.wait_for` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.service.wait_for(namespace, job_id, timeout)

    async def cancel(self, namespace: str, job_id: str) -> Job:
        """`QueueService.cancel` (right: steer_job)."""
        self._require(Action.STEER_JOB, namespace)
        return await self.service.cancel(namespace, job_id)

    async def retry(self, namespace: str, job_id: str) -> Job:
        """`QueueService.retry` (right: steer_job)."""
        self._require(Action.STEER_JOB, namespace)
        return await self.service.retry(namespace, job_id)

    async def delete(self, namespace: str, job_id: str) -> None:
        """`QueueService.delete` (right: delete_job)."""
        self._require(Action.DELETE_JOB, namespace)
        await self.service.delete(namespace, job_id)

    # --- queues -----------------------------------------------------------------------------

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        """`QueueService.list_queues` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.service.list_queues(namespace)

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        """`QueueService.stats` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.service.stats(namespace, queue)

    async def pause_queue(self, namespace: str, queue: str) -> None:
        """`QueueService.pause_queue` (right: manage_queues)."""
        self._require(Action.MANAGE_QUEUES, namespace)
        await self.service.pause_queue(namespace, queue)

    async def resume_queue(self, namespace: str, queue: str) -> None:
        """`QueueService.resume_queue` (right: manage_queues)."""
        self._require(Action.MANAGE_QUEUES, namespace)
        await self.service.resume_queue(namespace, queue)

    async def purge_queue(self, namespace: str, queue: str) -> int:
        """`QueueService.purge_queue` (right: manage_queues)."""
        self._require(Action.MANAGE_QUEUES, namespace)
        return await self.service.purge_queue(namespace, queue)

    async def delete_queue(self, namespace: str, queue: str) -> int:
        """`QueueService.delete_queue` (right: manage_queues)."""
        self._require(Action.MANAGE_QUEUES, namespace)
        return await self.service.delete_queue(namespace, queue)

    # --- working ----------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo) -> WorkerInfo:
        """`QueueService.register_worker` (right: work)."""
        self._require(Action.WORK, worker.namespace)
        return await self.service.register_worker(worker)

    async def resume_worker(self, request: ResumeInput) -> Resumed:
        """`QueueService.resume_worker` (right: work)."""
        self._require(Action.WORK, request.namespace)
        return await self.service.resume_worker(request)

    async def claim(self, request: ClaimInput) -> list[Job]:
        """`QueueService.claim` (right: work)."""
        self._require(Action.WORK, request.namespace)
        jobs = await self.service.claim(request)
        try:
            self.authorizer.require_live(self.principal)
        except Unauthenticated:
            if jobs:  # revoked while the claim waited for work: they go back, unstarted
                leases = [job.lease for job in jobs]
                await self.service.release(leases)
            raise
        return jobs

    async def heartbeat(
        self,
        leases: Sequence[LeaseRef],
        worker_id: str | None = None,
        *,
        lease_ttl: float | None = None,
        namespace: str | None = None,
    ) -> HeartbeatResult:
        """`QueueService.heartbeat` (right: work in each job's namespace). The worker record
        of `worker_id` in `namespace` is refreshed only where the caller may work: elsewhere
        the leases are renewed all the same (a pull worker of another namespace that leaves
        out `namespace` keeps its jobs) and the record is left alone.
        """
        await self._require_work_on(leases)
        if worker_id is not None and (
            namespace is None or not self.authorizer.allows(self.principal, Action.WORK, namespace)
        ):
            worker_id = None
        return await self.service.heartbeat(
            leases, worker_id, lease_ttl=lease_ttl, namespace=namespace
        )

    async def complete(self, lease: LeaseRef, result: bytes | None = None) -> Job:
        """`QueueService.complete` (right: work in the job's namespace)."""
        await self._require_work_on([lease])
        return await self.service.complete(lease, result)

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None = None) -> Job:
        """`QueueService.fail` (right: work in the job's namespace)."""
        await self._require_work_on([lease])
        return await self.service.fail(lease, error, retry_delay)

    async def release(self, leases: Sequence[LeaseRef]) -> list[Job]:
        """`QueueService.release` (right: work in each job's namespace)."""
        await self._require_work_on(leases)
        return await self.service.release(leases)

    async def set_progress(self, lease: LeaseRef, progress: float) -> None:
        """`QueueService.set_progress` (right: work in the job's namespace)."""
        await self._require_work_on([lease])
        await self.service.set_progress(lease, progress)

    # --- workers ----------------------------------------------------------------------------

    async def list_workers(self, namespace: str) -> list[WorkerInfo]:
        """`QueueService.list_workers` of one namespace (right: read)."""
        self._require(Action.READ, namespace)
        return await self.service.list_workers(namespace)

    async def find_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        """`QueueService.find_worker` (right: read)."""
        self._require(Action.READ, namespace)
        return await self.service.find_worker(namespace, worker_id)

    async def kick_worker(self, namespace: str, worker_id: str) -> list[Job]:
        """`QueueService.kick_worker` (right: manage_workers)."""
        self._require(Action.MANAGE_WORKERS, namespace)
        return await self.service.kick_worker(namespace, worker_id)

    async def drain_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        """`QueueService.drain_worker` (right: manage_workers)."""
        self._require(Action.MANAGE_WORKERS, namespace)
        return await self.service.drain_worker(namespace, worker_id)
