"""The client's one seam: a `Transport` reaches a shoal service, in process or over a network.

`LocalTransport` holds a `QueueService` (memory or SQLite); a gRPC transport speaks to a server.
Both take and return the core's types, so the app, the handles and the worker are written once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shoal.core.events import Event
from shoal.core.model import Job, JobError, LeaseRef, QueueStats, WorkerInfo
from shoal.core.ports import Enqueued, HeartbeatResult
from shoal.core.schedules import ScheduleApi
from shoal.core.service import MAX_LOOKAHEAD
from shoal.core.validation import EnqueueRequest

__all__ = [
    "GRPC_SCHEMES",
    "LOOKAHEAD",
    "MAX_ERROR_BYTES",
    "MAX_PREFETCH",
    "NATIVE_SCHEMES",
    "REMOTE_SCHEMES",
    "CancelListener",
    "LostSession",
    "Transport",
    "WorkerSession",
]

#: URL schemes of a server: `grpc://` a clear channel, `grpcs://` a TLS one.
GRPC_SCHEMES = ("grpc", "grpcs")
#: The same services on shoal's native framing (docs/native-protocol.md): the fast path for
#: Python clients. `shoal://` in clear, `shoals://` over TLS.
NATIVE_SCHEMES = ("shoal", "shoals")
#: Every scheme that reaches a server.
REMOTE_SCHEMES = GRPC_SCHEMES + NATIVE_SCHEMES
#: The most jobs a worker may lease beyond its free slots (`Worker(prefetch=...)`).
MAX_PREFETCH = 64
#: The most bytes of error text a failure carries to a server (a longer one is cut in its
#: middle): a job travels with its payload, its result and its last error in one message.
MAX_ERROR_BYTES = 256 * 1024
#: Seconds before its run_at a worker will take a scheduled job, to start it at its run_at on
#: its own clock instead of a network hop after it. The service caps it at its own lookahead
#: (`service.lookahead`, at most this much), so the server's setting is the one in force.
LOOKAHEAD = MAX_LOOKAHEAD

#: Called with a job id when the service asks the worker to stop that job.
CancelListener = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LostSession:
    """A worker's session that died under it, as the worker tells its next one: the secret it
    was welcomed with, and the leases of the jobs the worker still runs or has outcomes for.
    """

    secret: str
    held: tuple[LeaseRef, ...]
    #: The most leases the server lets a hello name (its `limits.max_batch`, as the lost
    #: session learnt it); None where unknown. A hello naming more is refused whole, and a
    #: worker running more jobs than that could never connect again.
    max_held: int | None = None


class WorkerSession(Protocol):
    """A worker's connection: claims, lease renewals and outcomes for its jobs.

    Closing the session releases every lease it still holds (the service requeues the jobs).
    """

    #: What names this session to the service if it dies (`LostSession`); empty where a
    #: session cannot be lost under the worker (local).
    session_secret: str
    #: Seconds between heartbeats that the service expects.
    heartbeat_interval: float
    #: The most bytes a result and its job's payload may take together; None where nothing
    #: bounds them (local). A server ends a worker stream that sends a message over its limit,
    #: and cannot send back a job that large.
    max_outcome_bytes: int | None
    #: True once the service asked the worker to finish what runs and leave this session
    #: (a server shutting down); the worker then opens a new session.
    draining: bool

    @property
    def max_held(self) -> int | None:
        """The most leases the service lets the next session name as held (`LostSession`);
        None where nothing bounds it (local).
        """
        ...

    async def claim(self, queues: Sequence[str], limit: int, wait: float) -> list[Job]:
        """Lease up to `limit` jobs, waiting up to `wait` seconds for one."""
        ...

    async def heartbeat(self, leases: Sequence[LeaseRef]) -> HeartbeatResult:
        """Renew all these leases at once."""
        ...

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        """Report success. `LeaseLost` if the lease is stale."""
        ...

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None) -> None:
        """Report a failed attempt. `LeaseLost` if the lease is stale."""
        ...

    async def release(self, leases: Sequence[LeaseRef]) -> None:
        """Give jobs back unfinished; their attempts do not count."""
        ...

    async def progress(self, lease: LeaseRef, value: float) -> None:
        """Record a running job's progress (0 to 1)."""
        ...

    async def close(self) -> None:
        """Leave: release leases still held and forget the worker."""
        ...


class Transport(Protocol):
    """What the SDK needs from a shoal service."""

    async def open(self) -> None:
        """Connect (open the store, dial the server)."""
        ...

    async def close(self) -> None:
        """Disconnect and release every resource."""
        ...

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Store jobs in one transaction; one `Enqueued` per request, in order."""
        ...

    async def get(self, namespace: str, job_id: str) -> Job:
        """The job. `NotFound` if there is none."""
        ...

    async def wait(self, namespace: str, job_id: str, timeout: float) -> Job:
        """The job once finished, or as it is after `timeout` seconds."""
        ...

    async def cancel(self, namespace: str, job_id: str) -> Job:
        """Cancel the job (at once if waiting; by asking its worker if running)."""
        ...

    async def stats(self, namespace: str, queue: str | None) -> QueueStats:
        """Counts of jobs by state."""
        ...

    def events(self, namespace: str) -> AsyncIterator[Event]:
        """Lifecycle events of the namespace as they happen, until the iterator is closed."""
        ...

    async def connect_worker(
        self,
        worker: WorkerInfo,
        on_cancel: CancelListener,
        *,
        prefetch: int = 0,
        lost: LostSession | None = None,
    ) -> WorkerSession:
        """Join as a worker; `on_cancel` hears of cancellations of this worker's jobs.

        `prefetch`: jobs to lease beyond the free slots, where the transport has a network
        round trip to hide (a local session claims in-process and ignores it).
        `lost`: the session this one replaces. A server keeps its held leases on the new one
        and gives back at once what else it held (a server that restarted after a crash still
        has those in its store). A local session has no server to lose: it ignores it.
        """
        ...

    def schedules(self) -> ScheduleApi:
        """The service's schedules (once open)."""
        ...
