"""Local mode: the service itself, in this process, over a memory or SQLite store.

This is the dingo "local" mode and httpx's `ASGITransport` idea: the same client API, with the
network taken out. The store is chosen by URL scheme from an explicit table and imported only
when used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from shoal.core.errors import ConfigError, Unavailable
from shoal.core.events import Event
from shoal.core.maintenance import Maintenance
from shoal.core.model import Job, JobError, LeaseRef, QueueStats, WorkerInfo
from shoal.core.ports import Enqueued, HeartbeatResult, Store
from shoal.core.schedules import ScheduleApi
from shoal.core.service import ClaimInput, QueueService, ServiceSettings
from shoal.core.validation import EnqueueRequest
from shoal.scheduler import SchedulerApi, SchedulerRunner, ScheduleService
from shoal.sdk._transport import LOOKAHEAD, CancelListener, LostSession

__all__ = ["LOCAL_SCHEMES", "LocalTransport", "store_from_url"]

logger = logging.getLogger(__name__)


def _memory(url: str) -> Store:
    from shoal.stores.memory import MemoryStore

    return MemoryStore()


def _sqlite(url: str) -> Store:
    # Like SQLAlchemy: sqlite:///relative/file.db and sqlite:////absolute/file.db.
    path = urlsplit(url).path.removeprefix("/")
    if not path:
        raise ConfigError(f"{url!r} names no file; use sqlite:///path/to/file.db")
    from shoal.stores.sqlite import SqliteStore

    # In-process, the caller awaits each write anyway: its loop runs lone writes itself.
    store: Store = SqliteStore(Path(path), inline_writes=True)
    return store


#: The stores local mode can run on, by URL scheme.
LOCAL_SCHEMES: dict[str, Callable[[str], Store]] = {"memory": _memory, "sqlite": _sqlite}


def store_from_url(url: str) -> Store:
    """A new (unopened) store for a `memory://` or `sqlite:///` URL."""
    scheme = urlsplit(url).scheme
    factory = LOCAL_SCHEMES.get(scheme)
    if factory is None:
        raise ConfigError(f"no local store for {url!r}; use one of {sorted(LOCAL_SCHEMES)}")
    return factory(url)


class LocalTransport:
    """A `QueueService`, its maintenance loop and a scheduler runner, in this process.

    The runner is leader-elected through the store, as in a server; a SQLite file, though,
    serves one store at a time (its lock refuses a second, in any process), so one app (or
    one server) uses it: other programs reach it through that server.
    """

    def __init__(self, store: Store | str = "memory://", settings: ServiceSettings | None = None):
        self._store = store
        self._settings = settings
        self._service: QueueService | None = None
        self._maintenance: Maintenance | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._runner: SchedulerRunner | None = None
        self._runner_task: asyncio.Task[None] | None = None

    @property
    def service(self) -> QueueService:
        """The service (open the transport first)."""
        if self._service is None:
            raise Unavailable("the local transport is not open")
        return self._service

    async def open(self) -> None:
        """Open the store and start the maintenance duties."""
        store = store_from_url(self._store) if isinstance(self._store, str) else self._store
        await store.open()
        self._service = QueueService(store, self._settings)
        self._maintenance = Maintenance(self._service)
        self._maintenance_task = asyncio.create_task(self._maintenance.run())
        self._runner = SchedulerRunner(self._service)
        self._runner_task = asyncio.create_task(self._runner.run())

    async def close(self) -> None:
        """Stop the scheduler and maintenance, end event streams and close the store."""
        if self._service is None:
            return
        service, self._service = self._service, None
        if self._runner is not None and self._runner_task is not None:
            self._runner.stop()
            await self._runner_task
        if self._maintenance is not None and self._maintenance_task is not None:
            self._maintenance.stop()
            await self._maintenance_task
        service.events.close()
        await service.store.close()

    def abandon(self) -> None:
        """The loop this transport ran on closed without `close()`: its tasks are gone with
        it, but the store's threads, and a SQLite file's lock, are not. Close the store on a
        loop of its own, so that a new transport may open the file again.
        """
        service, self._service = self._service, None
        if service is None:
            return
        closing = threading.Thread(target=asyncio.run, args=(service.store.close(),))
        closing.start()
        closing.join()

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Store jobs in one transaction."""
        return await self.service.enqueue_many(requests)

    async def get(self, namespace: str, job_id: str) -> Job:
        """The job."""
        return await self.service.get(namespace, job_id)

    async def wait(self, namespace: str, job_id: str, timeout: float) -> Job:
        """The job once finished, or after `timeout` seconds."""
        return await self.service.wait_for(namespace, job_id, timeout)

    async def cancel(self, namespace: str, job_id: str) -> Job:
        """Cancel the job."""
        return await self.service.cancel(namespace, job_id)

    async def stats(self, namespace: str, queue: str | None) -> QueueStats:
        """Counts of jobs by state."""
        return await self.service.stats(namespace, queue)

    async def events(self, namespace: str) -> AsyncIterator[Event]:
        """The service's events for this namespace (and service-wide ones)."""
        subscription = self.service.events.subscribe(
            lambda event: event.namespace in (namespace, "*")
        )
        try:
            async for event in subscription:
                yield event
        finally:
            subscription.close()

    def schedules(self) -> ScheduleApi:
        """The schedules, fired by this transport's runner."""
        return SchedulerApi(ScheduleService(self.service))

    async def connect_worker(
        self,
        worker: WorkerInfo,
        on_cancel: CancelListener,
        *,
        prefetch: int = 0,
        lost: LostSession | None = None,
    ) -> LocalSession:
        """Register the worker and return its session. A local session is not lost under
        its worker (it has no secret to name it by): `lost` changes nothing here.
        """
        await self.service.register_worker(worker)
        return LocalSession(self.service, worker, on_cancel)


class LocalSession:
    """A worker's session with an in-process service; cancellations arrive as events."""

    def __init__(self, service: QueueService, worker: WorkerInfo, on_cancel: CancelListener):
        self._service = service
        self._worker = worker
        self._on_cancel = on_cancel
        self.session_secret = ""
        self.heartbeat_interval = service.settings.heartbeat_interval
        self.max_outcome_bytes: int | None = None
        self.max_held: int | None = None
        self.draining = False
        self._cancels = service.events.subscribe(
            lambda e: e.kind == "job.cancel_requested" and e.worker_id == worker.id
        )
        self._pump = asyncio.create_task(self._forward_cancels())

    async def _forward_cancels(self) -> None:
        async for event in self._cancels:
            if event.job_id is not None:
                self._on_cancel(event.job_id)

    async def claim(self, queues: Sequence[str], limit: int, wait: float) -> list[Job]:
        """Lease up to `limit` jobs."""
        request = ClaimInput(
            worker_id=self._worker.id,
            queues=tuple(queues),
            namespace=self._worker.namespace,
            limit=limit,
            wait=wait,
            tasks=self._worker.tasks or None,
            lookahead=LOOKAHEAD,
        )
        return await self._service.claim(request)

    async def heartbeat(self, leases: Sequence[LeaseRef]) -> HeartbeatResult:
        """Renew the leases and the worker's heartbeat."""
        return await self._service.heartbeat(leases, self._worker.id)

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        """Report success."""
        await self._service.complete(lease, result)

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None) -> None:
        """Report a failed attempt."""
        await self._service.fail(lease, error, retry_delay)

    async def release(self, leases: Sequence[LeaseRef]) -> None:
        """Give jobs back unstarted."""
        await self._service.release(leases)

    async def progress(self, lease: LeaseRef, value: float) -> None:
        """Record progress."""
        await self._service.set_progress(lease, value)

    async def close(self) -> None:
        """Leave the cluster; leases still held are released by the service."""
        self._cancels.close()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        with contextlib.suppress(Unavailable):
            await self._service.worker_gone(self._worker.id, "worker left")
