"""`QueueService`: the one API every surface calls (gRPC, HTTP, TCP, dashboard, CLI, SDK).

Adapters decode, call one method here, and encode; every rule of the job model is enforced
here or in the store behind it, never in an adapter.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby

from shoal.core.clock import Clock, SystemClock
from shoal.core.errors import Conflict, InvalidArgument, NotFound, ShoalError
from shoal.core.events import RELAYED, Event, EventBus, job_event
from shoal.core.ids import new_job_ids, server_assigned, worker_id_of
from shoal.core.model import (
    WAITING_STATES,
    Job,
    JobError,
    JobId,
    JobPage,
    JobQuery,
    JobState,
    LeaseRef,
    QueueInfo,
    QueueStats,
    WorkerInfo,
    WorkerState,
)
from shoal.core.ports import (
    ClaimRequest,
    Enqueued,
    HeartbeatResult,
    Resumed,
    Store,
    WorkerResume,
)
from shoal.core.retry import RetryPolicy
from shoal.core.validation import (
    EnqueueRequest,
    Limits,
    check_enqueue,
    check_job_error,
    check_lease_ttl,
    check_name,
    check_query,
    check_retry_delay,
)
from shoal.core.wakeup import ReadySignal

__all__ = [
    "ClaimInput",
    "QueuePolicy",
    "QueueService",
    "ResumeInput",
    "ServiceSettings",
    "check_resume",
]

logger = logging.getLogger(__name__)

#: The longest secret `resume_worker` takes (the service issues 32 characters).
_MAX_SECRET = 128
#: What a heartbeat naming no lease finds.
_NOTHING_HELD = HeartbeatResult((), (), ())


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Defaults for the jobs of a queue, used where a job does not say."""

    max_attempts: int = 3
    backoff: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """How the service behaves; loaded from configuration by the composition root."""

    lease_ttl: float = 15.0
    heartbeat_interval: float = 2.0
    #: Finished jobs are deleted this many seconds after they finish.
    retention: float = 7 * 24 * 3600.0
    limits: Limits = field(default_factory=Limits)
    default_policy: QueuePolicy = field(default_factory=QueuePolicy)
    #: Per-queue policies by queue name (any namespace).
    queue_policies: Mapping[str, QueuePolicy] = field(default_factory=dict)
    #: A worker that asks for it may lease a scheduled job this many seconds before its
    #: `run_at` and hold it until then, so it starts on time rather than one network hop
    #: late. It caps what a claim asks for; the scheduler fires this early too.
    lookahead: float = 0.1
    #: The record of a worker silent this many seconds and holding no lease is deleted (it
    #: shows as lost from `lease_ttl` on); 0 keeps every record until the worker leaves.
    forget_workers_after: float = 3600.0

    def policy(self, queue: str) -> QueuePolicy:
        """The policy of `queue`."""
        return self.queue_policies.get(queue, self.default_policy)


#: The most a service's lookahead may be (configuration refuses more); the SDK's workers ask
#: for this much and get the service's own.
MAX_LOOKAHEAD = 1.0


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


@dataclass(frozen=True, slots=True)
class ResumeInput:
    """A worker's new stream `worker_id` after it lost one: the secret the lost stream was
    welcomed with (`ids.new_worker_session`), and the leases the worker still holds.
    """

    worker_id: str
    secret: str
    held: tuple[LeaseRef, ...] = ()
    namespace: str = "default"


def check_resume(request: ResumeInput, limits: Limits) -> str:
    """The id of the lost stream `request` names, or `InvalidArgument` for a bad request."""
    if not 0 < len(request.secret) <= _MAX_SECRET:
        raise InvalidArgument("secret", f"must be the lost stream's ({_MAX_SECRET} at most)")
    if len(request.held) > limits.max_batch:
        raise InvalidArgument("held", f"at most {limits.max_batch} leases")
    previous = worker_id_of(request.secret)
    if previous == request.worker_id:
        raise InvalidArgument("secret", "is the new stream's own")
    return previous


class QueueService:
    """Jobs, queues, leases and workers, over one `Store`."""

    def __init__(
        self,
        store: Store,
        settings: ServiceSettings | None = None,
        clock: Clock | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or ServiceSettings()
        self.clock: Clock = clock or SystemClock()
        self.events = events or EventBus()
        self.ready = ReadySignal()
        store.set_ready_listener(self.ready)
        store.set_broadcast_listener(self._relayed)
        self._scheduled_listeners: list[Callable[[], None]] = []
        self._broadcasts: set[asyncio.Task[None]] = set()

    def publish_everywhere(self, event: Event) -> None:
        """Publish `event` here and to the other processes that share the store (replicas):
        a kick or drain reaches a worker connected to any of them, a schedule's change the
        scheduler that leads. Sent in the background: the change it tells of is committed.
        """
        self.events.publish(event)
        if self.store.supports_notify:
            task = asyncio.ensure_future(self._broadcast(event))
            self._broadcasts.add(task)
            task.add_done_callback(self._broadcasts.discard)

    async def finish_broadcasts(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout` seconds) for the broadcasts still being sent: a server that
        stops sends the kicks and drains it was asked for before it closes its store.
        """
        if self._broadcasts:
            await asyncio.wait(set(self._broadcasts), timeout=timeout)

    def _relayed(self, event: Event) -> None:
        """An event another replica published: here too, marked as relayed (`RELAYED`), so
        that what counts events counts it once, on the replica it happened on.
        """
        self.events.publish(replace(event, data={**event.data, RELAYED: "true"}))

    async def _broadcast(self, event: Event) -> None:
        try:
            await self.store.broadcast(event)
        except Exception:  # the others see the change later (leases, resyncs), not at once
            logger.warning(
                "could not tell the other replicas of %s",
                event.kind,
                exc_info=True,
                extra={"event": "store.broadcast_failed", "kind": event.kind},
            )

    def on_scheduled(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a job starts waiting for its `run_at` (a delayed enqueue, a
        retry with backoff): the promoter wakes to recompute its sleep. A direct call, so that
        no event is built for every enqueue when nobody else listens to events.
        """
        self._scheduled_listeners.append(listener)

    def _scheduled(self) -> None:
        # Called after a commit: a listener that fails must not fail the operation.
        for listener in self._scheduled_listeners:
            try:
                listener()
            except Exception:
                logger.exception(
                    "an on_scheduled listener failed", extra={"event": "service.error"}
                )

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

    def _wake_claimers(self, jobs: Iterable[Job], now: float) -> None:
        """Wake the claimers of the new jobs' queues: every one for a due job, only those
        that asked for a lookahead for a job due within it.
        """
        due: set[tuple[str, str]] = set()
        soon: set[tuple[str, str]] = set()
        horizon = now + self.settings.lookahead
        for job in jobs:
            if job.state is JobState.QUEUED:
                due.add((job.namespace, job.queue))
            elif job.run_at <= horizon:
                soon.add((job.namespace, job.queue))
        for namespace, queue in due:
            self.ready.notify(namespace, queue)
        for namespace, queue in soon - due:
            self.ready.notify_soon(namespace, queue)

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
        """The job once it is finished, or as it is when `timeout` seconds have passed."""
        subscription = self.events.subscribe(lambda event: event.job_id == job_id)
        try:
            deadline = self.clock.now() + max(timeout, 0.0)
            while True:
                job = await self.get(namespace, job_id)
                remaining = deadline - self.clock.now()
                if job.is_terminal or remaining <= 0:
                    return job
                await subscription.next(remaining)
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

    def _requeued(self, jobs: Sequence[Job], now: float) -> None:
        waiting = [job for job in jobs if job.state in WAITING_STATES]
        self._wake_claimers(waiting, now)
        if any(job.state is JobState.SCHEDULED for job in waiting):
            self._scheduled()  # taken ahead of its run_at, it waits for it again
        for job in jobs:
            kind = "job.requeued" if job.state in WAITING_STATES else f"job.{job.state.value}"
            self._publish(kind, job, now)

    # --- workers ----------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo) -> WorkerInfo:
        """A worker joined (or reconnected): record its membership."""
        check_name("namespace", worker.namespace)
        check_name("worker_id", worker.id)
        if worker.concurrency < 1:
            raise InvalidArgument("concurrency", "must be at least 1")
        # Records are keyed by id alone, and some workers choose theirs (HTTP pull, go-work):
        # taking another namespace's would move its record here. An id of the server's form
        # is a new random one (no worker may choose it): no need to look it up at all.
        if not server_assigned(worker.id):
            known = await self.store.get_worker(worker.id)
            if known is not None and known.namespace != worker.namespace:
                raise Conflict(f"worker id {worker.id} is taken in another namespace")
        await self.store.upsert_worker(worker)
        self.events.publish(
            Event("worker.joined", worker.namespace, self.clock.now(), worker_id=worker.id)
        )
        return worker

    async def resume_worker(self, request: ResumeInput) -> Resumed:
        """A registered worker is back after losing a stream, which it proves it owned with
        that stream's secret: the leases it still holds move to the new stream, and what the
        lost one held and it does not (an assignment lost in flight, a prefetched job) goes
        back to its queue at once, unstarted, instead of after its lease. The lost stream's
        record goes.
        """
        previous = check_resume(request, self.settings.limits)
        now = self.clock.now()
        resume = WorkerResume(request.namespace, request.worker_id, previous, request.held)
        resumed = await self.store.resume_worker(resume, now)
        self._requeued(resumed.released, now)
        recorded = False
        try:  # the leases have moved: a failure to tidy the membership must not undo that
            await self._find_worker(request.namespace, previous)
            recorded = True
            await self.store.delete_worker(previous)
        except NotFound:
            pass
        except ShoalError as error:
            logger.warning(
                "the record of lost worker stream %s stays: %s",
                previous,
                error.message,
                extra={"event": "worker.resume_tidy_failed", "worker_id": previous},
            )
        reason = f"resumed as {request.worker_id}"
        if recorded:
            # its record was there: no server has seen the lost stream end (a half-open
            # connection), and the one that serves it must hand it no more jobs
            why = {"reason": reason}
            self.publish_everywhere(
                Event("worker.drain", request.namespace, now, worker_id=previous, data=why)
            )
        if recorded or resumed.kept or resumed.released:
            data = {"reason": reason, "released": str(len(resumed.released))}
            self.events.publish(
                Event("worker.left", request.namespace, now, worker_id=previous, data=data)
            )
        return resumed

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        """The cluster membership, each worker in the state every surface shows: draining as
        recorded; lost once silent for a lease's length (its leases are gone by then);
        otherwise busy or idle by its running jobs.
        """
        now, ttl = self.clock.now(), self.settings.lease_ttl
        return [
            replace(worker, state=_shown_state(worker, now, ttl))
            for worker in await self.store.list_workers(namespace)
        ]

    async def forget_lost_workers(self) -> list[WorkerInfo]:
        """Delete the records of workers silent for `forget_workers_after` that hold no lease.

        Nothing else removes the record of a worker that died without leaving (a pull worker,
        a go-work member, a stream of a server killed on a shared store): they would pile up in
        every listing. The store's heartbeat is the test, so a worker connected to another
        replica stays while it beats there; its leases have expired long before (the reaper).
        """
        after = self.settings.forget_workers_after
        if after <= 0:
            return []
        now = self.clock.now()
        forgotten = await self.store.forget_workers(now - after)
        for worker in forgotten:
            data = {"reason": f"silent for {now - worker.last_heartbeat:.0f}s"}
            self.events.publish(
                Event("worker.left", worker.namespace, now, worker_id=worker.id, data=data)
            )
        return forgotten

    async def worker_gone(
        self, worker_id: str, reason: str, namespace: str | None = None
    ) -> list[Job]:
        """A worker disconnected or was kicked: its leases end now, its record goes. Given a
        namespace, only there: a pull worker chooses its id, and another namespace's worker
        may have the same one.
        """
        jobs = await self.take_back(worker_id, reason, namespace)
        now = self.clock.now()
        await self.store.delete_worker(worker_id, namespace)
        reason_data = {"reason": reason}
        self.events.publish(
            Event("worker.left", namespace or "*", now, worker_id=worker_id, data=reason_data)
        )
        return jobs

    async def take_back(
        self, worker_id: str, reason: str, namespace: str | None = None
    ) -> list[Job]:
        """End every lease a worker still holds (in `namespace`, when given), with no word
        about its membership: `worker_gone` does both, and a stream that was kicked sweeps
        with this what a claim racing the kick leased to it after.
        """
        now = self.clock.now()
        jobs = await self.store.release_worker(worker_id, now, reason, namespace)
        self._requeued(jobs, now)
        return jobs

    async def kick_worker(self, namespace: str, worker_id: str) -> list[Job]:
        """Disconnect a worker: release its leases and tell its connection to close."""
        await self._find_worker(namespace, worker_id)
        self.publish_everywhere(
            Event("worker.kick", namespace, self.clock.now(), worker_id=worker_id)
        )
        return await self.worker_gone(worker_id, "kicked", namespace)

    async def drain_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        """Ask a worker to finish what it runs and take nothing more."""
        worker = replace(await self._find_worker(namespace, worker_id), state=WorkerState.DRAINING)
        await self.store.upsert_worker(worker)
        drain = Event("worker.drain", namespace, self.clock.now(), worker_id=worker_id)
        self.publish_everywhere(drain)
        return worker

    async def _find_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        worker = await self.store.get_worker(worker_id)
        if worker is None or worker.namespace != namespace:
            raise NotFound(f"worker {worker_id} not found in namespace {namespace!r}")
        return worker

    # --- events -----------------------------------------------------------------------------

    def _publish(self, kind: str, job: Job, now: float) -> None:
        if self.events.wants(kind):
            self.events.publish(job_event(kind, job, now))

    def _publish_queue(self, kind: str, namespace: str, queue: str) -> None:
        self.events.publish(Event(kind, namespace, self.clock.now(), queue=queue))


def _shown_state(worker: WorkerInfo, now: float, lease_ttl: float) -> WorkerState:
    if worker.state is WorkerState.DRAINING:
        return worker.state
    if now - worker.last_heartbeat > lease_ttl:
        return WorkerState.LOST
    return WorkerState.BUSY if worker.running else WorkerState.IDLE
