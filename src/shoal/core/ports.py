"""The storage contract, in queue terms.

`Store` is what the service needs from a backend; memory, SQLite and PostgreSQL implement it and
pass one conformance suite (`shoal.testing.store_contract`). Every method is atomic: it either
does all it says or raises and changes nothing. Times (`now`) are passed in by the caller, so a
store never reads a clock and tests control time completely.

Job state changes follow `shoal.core.transitions`; a store may do them in its own language (SQL)
as long as the result is the same, which the conformance suite checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shoal.core.events import Event
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

__all__ = [
    "BroadcastListener",
    "ClaimRequest",
    "DueResult",
    "Enqueued",
    "HeartbeatResult",
    "ReadyListener",
    "Resumed",
    "ScheduleRecord",
    "Store",
    "WorkerResume",
]


class ReadyListener(Protocol):
    """Told by a store that learns of ready jobs from elsewhere (another replica)."""

    def notify(self, namespace: str, queue: str) -> None:
        """Jobs became ready in this queue."""
        ...

    def notify_all(self) -> None:
        """Jobs may have become ready in any queue: notices may have been missed (a lost
        connection to the database, now back), so every waiting claimer should look.
        """
        ...


#: Called by a store with an event another process broadcast (`Store.broadcast`).
BroadcastListener = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The outcome of enqueueing one job: the stored job, and False if an existing one was
    returned because of its idempotency key.
    """

    job: Job
    created: bool


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Lease up to `limit` ready jobs of `queues` (in one namespace) to `worker_id`."""

    namespace: str
    queues: tuple[str, ...]
    worker_id: str
    limit: int
    lease_ttl: float
    now: float
    #: Only these task names (the worker cannot run others); None takes any task.
    tasks: tuple[str, ...] | None = None
    #: Seconds ahead: when fewer than `limit` jobs are due, also lease scheduled jobs with
    #: `now < run_at <= now + lookahead` (the worker holds each until its `run_at`).
    lookahead: float = 0.0


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """What a heartbeat found: leases renewed, leases no longer held, and jobs whose
    cancellation was requested (among the renewed).
    """

    renewed: tuple[str, ...]
    lost: tuple[str, ...]
    cancel_requested: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WorkerResume:
    """A worker back after losing its session (a server crash, a broken connection).

    `held`: the leases of the jobs it still runs, or ran and has yet to report. They move to its
    new session `worker_id`; every other job its previous session held in `namespace` never
    started on it (an assignment lost in flight, a prefetched job dropped with the session).
    """

    namespace: str
    worker_id: str
    previous_worker_id: str
    held: tuple[LeaseRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Resumed:
    """What `Store.resume_worker` did: the jobs the new session took over (still running), and
    the jobs given back.
    """

    kept: tuple[Job, ...]
    released: tuple[Job, ...]


@dataclass(frozen=True, slots=True)
class DueResult:
    """Scheduled jobs that became queued, by (namespace, queue), and when the next one is due."""

    promoted: tuple[tuple[str, str], ...]
    next_due_at: float | None


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as the store keeps it: the scheduler owns the meaning of `spec` (JSON text);
    the store indexes what it needs to find due schedules.
    """

    namespace: str
    id: str
    spec: str
    paused: bool
    next_fire_at: float | None
    last_fire_at: float | None
    created_at: float


class Store(Protocol):
    """A durable home for jobs, queues, workers, schedules and leader leases."""

    #: True when the store wakes claimers of other processes itself (PostgreSQL NOTIFY).
    supports_notify: bool

    async def open(self) -> None:
        """Connect, apply migrations, take any exclusive lock. Raise `StorageError` on failure."""
        ...

    async def close(self) -> None:
        """Flush what is pending and release every resource; further calls raise `Unavailable`."""
        ...

    def set_ready_listener(self, listener: ReadyListener) -> None:
        """Register whom to tell of jobs made ready by another process (if `supports_notify`)."""
        ...

    def set_broadcast_listener(self, listener: BroadcastListener) -> None:
        """Register the callback for the events other processes broadcast (if
        `supports_notify`); never called with this process's own.
        """
        ...

    async def broadcast(self, event: Event) -> None:
        """Tell the other processes that share this store (server replicas) about `event`: a
        kick or drain of a worker that may be connected to one of them, a schedule's change.
        Nothing to do for a store that one process uses.
        """
        ...

    # --- jobs -----------------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[Job], now: float, dedupe_window: float = 0.0
    ) -> list[Enqueued]:
        """Store new jobs, in order, in one transaction, and say which were created.

        A job with an `idempotency_key` is not stored when a job with the same key exists in its
        namespace that is not terminal, or was created within `dedupe_window` seconds before
        `now`; that existing job is returned with `created=False`. Two jobs of one batch with
        the same key give one job. Durable when this returns.
        """
        ...

    async def get_job(self, namespace: str, job_id: str) -> Job | None:
        """The job with this id in this namespace, or None."""
        ...

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """Jobs matching every filter of `query`, newest (highest id) first, one keyset page."""
        ...

    async def claim(self, request: ClaimRequest) -> list[Job]:
        """Lease up to `limit` claimable jobs: state queued or scheduled with `run_at <= now`,
        in a queue of the request that is not paused, with a task in `tasks` if given.

        Order: higher priority first, then earlier `run_at`, then lower id. Each claimed job
        moves as `transitions.claim` says (running, new unique token, attempt + 1,
        `lease_expires_at = now + lease_ttl`). No job is ever leased twice at once, whatever
        number of concurrent claimers in any number of processes.

        With a `lookahead`, the room left after the due jobs goes to scheduled jobs due within
        it, earliest `run_at` first (then lower id), with the same filters and moves.

        Scheduled jobs are claimable before the promoter makes them queued. A store may bound
        what a claim reads of them to the few with the earliest `run_at` of all queues (the SQL
        stores: 128), so that no claim costs more when many wait; past that many, a claim may
        take a job of lower priority first, or none of them, until the promoter moves them.
        """
        ...

    async def heartbeat(
        self, leases: Sequence[LeaseRef], lease_ttl: float, now: float
    ) -> HeartbeatResult:
        """Renew every live lease of `leases` to `now + lease_ttl`, never cutting one that
        ends later (a claim's longer lease keeps its end); report the others as lost.
        """
        ...

    async def complete(self, lease: LeaseRef, result: bytes | None, now: float) -> Job:
        """Finish a running job (`transitions.complete`). `LeaseLost` for a stale token,
        `NotFound` for an unknown job.
        """
        ...

    async def fail(
        self, lease: LeaseRef, error: JobError, now: float, retry_delay: float | None = None
    ) -> Job:
        """Record a failed attempt (`transitions.fail`): retry later, fail, or end cancelled."""
        ...

    async def release(self, leases: Sequence[LeaseRef], now: float) -> list[Job]:
        """Give unstarted jobs back (`transitions.release`); stale leases are skipped."""
        ...

    async def release_worker(
        self, worker_id: str, now: float, reason: str, namespace: str | None = None
    ) -> list[Job]:
        """Every job leased to this worker (in `namespace`, when given) loses its lease
        (`transitions.lose_lease`).
        """
        ...

    async def resume_worker(self, resume: WorkerResume, now: float) -> Resumed:
        """In one transaction: each live lease of `resume.held` in its namespace moves to
        `resume.worker_id` (`transitions.hand_over`; the token is the proof, whichever session
        the job was leased to), and every other job of that namespace leased to
        `resume.previous_worker_id` is given back unstarted (`transitions.release`).
        """
        ...

    async def reap_expired(self, now: float, limit: int = 1000) -> list[Job]:
        """Running jobs whose lease expired before `now` lose it (`transitions.lose_lease`)."""
        ...

    async def set_progress(self, lease: LeaseRef, progress: float) -> None:
        """Record progress (0..1) of a running job. `LeaseLost` for a stale token."""
        ...

    async def cancel(self, namespace: str, job_id: str, now: float) -> Job:
        """`transitions.cancel`. `NotFound`, or `Conflict` for a finished job."""
        ...

    async def retry(self, namespace: str, job_id: str, now: float) -> Job:
        """`transitions.retry`. `NotFound`, or `Conflict` unless failed or cancelled."""
        ...

    async def delete_job(self, namespace: str, job_id: str) -> None:
        """Remove a job that is not running. `NotFound`, or `Conflict` while it runs."""
        ...

    async def promote_due(self, now: float, limit: int = 10_000) -> DueResult:
        """Move scheduled jobs whose `run_at <= now` to queued; say when the next is due."""
        ...

    async def purge_finished(self, before: float, limit: int = 10_000) -> int:
        """Retention: delete up to `limit` terminal jobs finished before `before`; the count."""
        ...

    # --- queues ---------------------------------------------------------------------------

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        """Every queue of the namespace that holds jobs or was paused, by name."""
        ...

    async def set_queue_paused(self, namespace: str, queue: str, paused: bool) -> None:
        """Pause (claims skip the queue) or resume it; idempotent."""
        ...

    async def purge_queue(self, namespace: str, queue: str) -> int:
        """Delete the queue's waiting (queued and scheduled) jobs; the count."""
        ...

    async def delete_queue(self, namespace: str, queue: str) -> int:
        """Delete the queue and all its jobs; `Conflict` while any of them runs."""
        ...

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        """Counts by state and by task, for one queue or the whole namespace."""
        ...

    # --- workers --------------------------------------------------------------------------

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        """Create or replace a worker's membership record (`running` is not stored)."""
        ...

    async def touch_worker(self, worker_id: str, now: float, namespace: str | None = None) -> bool:
        """Set a worker's `last_heartbeat` to `now` (only if it is in `namespace`, when given);
        False if no such worker is recorded.
        """
        ...

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        """The record of the worker with this id, whatever its namespace (ids are unique across
        namespaces), with `running` counted from its leased jobs; None if there is none. A
        lookup by key: it reads no other worker's record.
        """
        ...

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        """Workers (of one namespace, or all) with `running` counted from their leased jobs."""
        ...

    async def delete_worker(self, worker_id: str, namespace: str | None = None) -> None:
        """Forget a worker (if it is in `namespace`, when given); its jobs are not touched
        (see `release_worker`).
        """
        ...

    async def forget_workers(self, silent_before: float, limit: int = 1000) -> list[WorkerInfo]:
        """Delete up to `limit` records of workers whose `last_heartbeat` is before
        `silent_before` and to whose id no running job is leased; the records deleted (with
        `running` 0). A worker touched meanwhile (`touch_worker`) is not deleted.
        """
        ...

    # --- schedules ------------------------------------------------------------------------

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        """Create or replace a schedule."""
        ...

    async def create_schedule(self, schedule: ScheduleRecord) -> None:
        """Add a schedule; `Conflict` (and nothing written) if its namespace has one with its
        id. One atomic step, so of two concurrent creations of an id exactly one succeeds.
        """
        ...

    async def replace_schedule(self, schedule: ScheduleRecord, expected: ScheduleRecord) -> bool:
        """Replace the stored schedule with `schedule` if it still has `expected`'s `spec` and
        `paused` (a compare-and-swap: every change of a schedule changes one of them); False,
        and nothing written, if it has changed or is gone. Never creates a schedule; keeps
        `created_at`.
        """
        ...

    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        ...

    async def list_schedules(self, namespace: str | None = None) -> list[ScheduleRecord]:
        """Schedules of one namespace or all, by id."""
        ...

    async def delete_schedule(self, namespace: str, schedule_id: str) -> None:
        """Remove a schedule. `NotFound` if there is none."""
        ...

    # --- leadership -----------------------------------------------------------------------

    async def try_acquire_leader(self, name: str, holder: str, ttl: float, now: float) -> bool:
        """Take or renew the leader lease `name` for `holder`; True if `holder` leads after
        the call. A lease whose holder stopped renewing is taken over once `ttl` has passed
        (or at once where the store can see that the holder's process is gone).
        """
        ...

    async def release_leader(self, name: str, holder: str) -> None:
        """Give up the lease if `holder` holds it."""
        ...
