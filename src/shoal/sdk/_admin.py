"""`Admin`: list, inspect and steer jobs, queues, workers and schedules (what the CLI uses).

One API over two backends: a server's `shoal.v1` gRPC services (`grpc://host:port`), or the
service itself in this process for `memory://` and `sqlite:///file` (the server must not hold
that file). Both expose `QueueService`'s and `ScheduleApi`'s method names, so each method here
is one delegation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from shoal.core.errors import ConfigError, ShoalError
from shoal.core.model import (
    DEFAULT_NAMESPACE,
    Job,
    JobPage,
    JobQuery,
    QueueInfo,
    QueueStats,
    WorkerInfo,
)
from shoal.core.ports import Enqueued
from shoal.core.schedules import ScheduleApi, ScheduleInput, ScheduleView
from shoal.core.validation import EnqueueRequest
from shoal.sdk._local import LOCAL_SCHEMES, LocalTransport
from shoal.sdk._transport import REMOTE_SCHEMES

__all__ = ["DEFAULT_ADMIN_URL", "Admin"]

#: Where `Admin` connects when neither its argument nor `SHOAL_URL` says.
DEFAULT_ADMIN_URL = "grpc://127.0.0.1:50051"


class _Jobs(Protocol):
    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]: ...
    async def get(self, namespace: str, job_id: str) -> Job: ...
    async def wait_for(self, namespace: str, job_id: str, timeout: float) -> Job: ...
    async def list_jobs(self, query: JobQuery) -> JobPage: ...
    async def cancel(self, namespace: str, job_id: str) -> Job: ...
    async def retry(self, namespace: str, job_id: str) -> Job: ...
    async def delete(self, namespace: str, job_id: str) -> None: ...
    async def list_queues(self, namespace: str) -> list[QueueInfo]: ...
    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats: ...
    async def pause_queue(self, namespace: str, queue: str) -> None: ...
    async def resume_queue(self, namespace: str, queue: str) -> None: ...
    async def purge_queue(self, namespace: str, queue: str) -> int: ...
    async def delete_queue(self, namespace: str, queue: str) -> int: ...
    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]: ...
    async def kick_worker(self, namespace: str, worker_id: str) -> Sequence[Job | str]: ...
    async def drain_worker(self, namespace: str, worker_id: str) -> WorkerInfo: ...


class Admin:
    """An administrator's client of one shoal service.

        async with Admin("grpc://127.0.0.1:50051") as admin:
            page = await admin.list_jobs(JobQuery(state=JobState.FAILED))

    Args:
        url: `grpc://host:port`, `memory://` or `sqlite:///file.db`; `SHOAL_URL`, else
            `grpc://127.0.0.1:50051`, when None.
        namespace: The namespace every call acts in unless it names another.
    """

    def __init__(self, url: str | None = None, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.url = url or os.environ.get("SHOAL_URL") or DEFAULT_ADMIN_URL
        self.namespace = namespace
        self._close: Any = None
        self._jobs: _Jobs | None = None
        self._schedules: ScheduleApi | None = None

    async def open(self) -> None:
        """Connect (dial the server, or open the local store).

        Raises:
            ConfigError: the URL names no supported service.
            Unavailable: no server answers.
        """
        scheme = urlsplit(self.url).scheme
        if scheme in LOCAL_SCHEMES:
            from shoal.scheduler import SchedulerApi, ScheduleService

            local = LocalTransport(self.url)
            await local.open()
            self._close = local.close
            self._jobs = local.service
            self._schedules = SchedulerApi(ScheduleService(local.service))
        elif scheme in REMOTE_SCHEMES:
            from shoal.sdk._admin_grpc import GrpcAdminService, GrpcSchedules
            from shoal.sdk._grpc import GrpcTransport

            remote = GrpcTransport(self.url)
            await remote.open()
            self._close = remote.close
            self._jobs = GrpcAdminService(remote)
            self._schedules = GrpcSchedules(remote)
        else:
            raise ConfigError(
                f"unsupported URL {self.url!r}; use grpc://host:port, shoal://host:port, "
                "grpcs:// or shoals://…, memory:// or sqlite:///…"
            )

    async def close(self) -> None:
        """Disconnect."""
        close, self._close = self._close, None
        self._jobs = self._schedules = None
        if close is not None:
            await close()

    async def __aenter__(self) -> Admin:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def _svc(self) -> _Jobs:
        if self._jobs is None:
            raise ShoalError("the admin client is not open")
        return self._jobs

    @property
    def _sch(self) -> ScheduleApi:
        if self._schedules is None:
            raise ShoalError("the admin client is not open")
        return self._schedules

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    # --- jobs -------------------------------------------------------------------------------

    async def enqueue(self, request: EnqueueRequest) -> Enqueued:
        """Store one job (its payload already serialized)."""
        return (await self._svc.enqueue_many([request]))[0]

    async def get_job(self, job_id: str, namespace: str | None = None) -> Job:
        """The job; `NotFound` if there is none."""
        return await self._svc.get(self._ns(namespace), job_id)

    async def wait_job(self, job_id: str, timeout: float, namespace: str | None = None) -> Job:
        """The job once finished, or as it is after `timeout` seconds."""
        return await self._svc.wait_for(self._ns(namespace), job_id, timeout)

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """A page of jobs, newest first; pass `next_cursor` back for the next page."""
        return await self._svc.list_jobs(query)

    async def cancel_job(self, job_id: str, namespace: str | None = None) -> Job:
        """Cancel a waiting job at once; ask a running job's worker to stop."""
        return await self._svc.cancel(self._ns(namespace), job_id)

    async def retry_job(self, job_id: str, namespace: str | None = None) -> Job:
        """Queue a failed or cancelled job again; `Conflict` otherwise."""
        return await self._svc.retry(self._ns(namespace), job_id)

    async def delete_job(self, job_id: str, namespace: str | None = None) -> None:
        """Remove a job that is not running."""
        await self._svc.delete(self._ns(namespace), job_id)

    # --- queues -----------------------------------------------------------------------------

    async def list_queues(self, namespace: str | None = None) -> list[QueueInfo]:
        """The namespace's queues with their counts."""
        return await self._svc.list_queues(self._ns(namespace))

    async def queue_stats(
        self, queue: str | None = None, namespace: str | None = None
    ) -> QueueStats:
        """Counts by state and task, for one queue or the whole namespace."""
        return await self._svc.stats(self._ns(namespace), queue)

    async def pause_queue(self, queue: str, namespace: str | None = None) -> None:
        """Stop handing out the queue's jobs (enqueues still land)."""
        await self._svc.pause_queue(self._ns(namespace), queue)

    async def resume_queue(self, queue: str, namespace: str | None = None) -> None:
        """Hand out the queue's jobs again."""
        await self._svc.resume_queue(self._ns(namespace), queue)

    async def purge_queue(self, queue: str, namespace: str | None = None) -> int:
        """Delete the queue's waiting jobs; how many."""
        return await self._svc.purge_queue(self._ns(namespace), queue)

    async def delete_queue(self, queue: str, namespace: str | None = None) -> int:
        """Delete the queue and its jobs (refused while any runs); how many jobs."""
        return await self._svc.delete_queue(self._ns(namespace), queue)

    # --- workers ----------------------------------------------------------------------------

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        """The connected workers of the namespace."""
        return await self._svc.list_workers(self._ns(namespace))

    async def kick_worker(self, worker_id: str, namespace: str | None = None) -> list[str]:
        """Disconnect a worker; the ids of the jobs whose lease ended."""
        released = await self._svc.kick_worker(self._ns(namespace), worker_id)
        return [item if isinstance(item, str) else item.id for item in released]

    async def drain_worker(self, worker_id: str, namespace: str | None = None) -> WorkerInfo:
        """Ask a worker to finish what it runs and take nothing more."""
        return await self._svc.drain_worker(self._ns(namespace), worker_id)

    # --- schedules --------------------------------------------------------------------------

    async def list_schedules(self, namespace: str | None = None) -> list[ScheduleView]:
        """The namespace's schedules, by id."""
        return await self._sch.list(self._ns(namespace))

    async def get_schedule(self, schedule_id: str, namespace: str | None = None) -> ScheduleView:
        """One schedule."""
        return await self._sch.get(self._ns(namespace), schedule_id)

    async def add_schedule(self, data: ScheduleInput) -> ScheduleView:
        """Create a schedule; `Conflict` if its id is taken."""
        return await self._sch.add(data)

    async def remove_schedule(self, schedule_id: str, namespace: str | None = None) -> None:
        """Delete a schedule (its jobs stay)."""
        await self._sch.remove(self._ns(namespace), schedule_id)

    async def pause_schedule(self, schedule_id: str, namespace: str | None = None) -> ScheduleView:
        """Stop firing."""
        return await self._sch.pause(self._ns(namespace), schedule_id)

    async def resume_schedule(self, schedule_id: str, namespace: str | None = None) -> ScheduleView:
        """Fire again from the next slot."""
        return await self._sch.resume(self._ns(namespace), schedule_id)

    async def trigger_schedule(self, schedule_id: str, namespace: str | None = None) -> Enqueued:
        """Enqueue the schedule's job now."""
        return await self._sch.trigger_now(self._ns(namespace), schedule_id)

    async def backfill_schedule(
        self, schedule_id: str, start: float, end: float, namespace: str | None = None
    ) -> list[Enqueued]:
        """One job for every slot in [start, end] that has none yet."""
        return await self._sch.backfill(self._ns(namespace), schedule_id, start, end)

    async def upcoming_fires(
        self, schedule_id: str, count: int = 5, namespace: str | None = None
    ) -> list[float]:
        """The next `count` fire times (POSIX seconds)."""
        return await self._sch.upcoming(self._ns(namespace), schedule_id, count)
