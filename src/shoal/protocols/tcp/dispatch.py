"""Pushing jobs to subscribed connections (the commands a worker sends back are in
`_worker_commands`).

Upstream broadcast every pending job to every available worker on every pass (seed-systems.md
1.6 and section 8, item 2). Here a subscribed connection is a shoal worker: while it holds no
job, a `WorkerLink` claims one job for it (`QueueService.claim`, so the store guarantees that
no other worker gets it), records the lease and pushes the dispatch line. The worker answers
with `UPDATE_JOB`: `in-progress` renews the lease, `done` completes the job, `errored` fails
it (the queue's retry policy, or at once with `delay_policy: IGNORE`). A connection is busy
from the dispatch line to its `done` or `errored`, so each gets one job at a time, as
Jobatator clients expect. Closing the connection releases its lease (`worker_gone`).

Jobatator clients do not heartbeat: while their connection is open the hub renews their leases
(`TcpSettings.renew_leases`), so a long job is not taken away from a live worker.

When the server stops (`stop`), a connection claims nothing more: one holding a job keeps
its connection until it reports it (`done` or `errored`, within the grace period), then is
closed; one holding none is closed at once.

A connection may subscribe in several groups: it is a worker of each, with an id of its own in
each (`WorkerLink.id_in`), so that every group lists it, and a kick or drain by one group's
admin (routed here by the hub) ends or stops only that group's work. A kick that leaves the
connection no group to work for hangs it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from shoal.core.errors import PermissionDenied, ShoalError, Unauthenticated
from shoal.core.ids import new_connection_worker_id
from shoal.core.model import Job, LeaseRef, WorkerInfo, WorkerState
from shoal.core.ports import HeartbeatResult
from shoal.core.service import ClaimInput
from shoal.core.validation import check_name
from shoal.protocols.tcp.commands import JobatatorState
from shoal.protocols.tcp.replies import (
    Dispatch,
    encode,
    go_job_from,
)

if TYPE_CHECKING:
    from shoal.protocols.tcp.session import Session

__all__ = ["WorkerLink", "dispatch_view"]

logger = logging.getLogger(__name__)

#: A waiting worker claims again at least this often, in case a wake-up was missed (a job
#: made ready by another process whose store cannot notify).
_POLL = 5.0


def dispatch_view(job: Job) -> Dispatch:
    """The dispatch line of a job just claimed, showing it as it was before the claim
    (`pending`, or `errored` when it comes back after a failure), as upstream sends it.
    """
    view = go_job_from(job)
    state = JobatatorState.ERRORED if job.error is not None else JobatatorState.PENDING
    return Dispatch({**view, "State": state.value})


class WorkerLink:
    """A connection as a worker: its subscriptions, its leases, and the task claiming for it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._queues: dict[str, set[str]] = {}
        #: job id -> (namespace, lease) of the jobs pushed to this connection, not yet done.
        self.leases: dict[str, tuple[str, LeaseRef]] = {}
        # Jobs whose cancellation was requested: their leases are no longer renewed for a
        # client that never heartbeats, so they end (cancelled) when the lease expires.
        self._cancelled: set[str] = set()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        #: The server stops: claim nothing more, end the connection once it holds no job.
        self._stopping = False
        #: The connection's worker id in each group it registered in (`id_in`).
        self._ids: dict[str, str] = {}
        #: Groups whose admin asked this worker to drain: it claims nothing more there.
        self._draining: set[str] = set()
        #: Held while a claim runs: what ends the work in a group (a kick, the last
        #: UNSUBSCRIBE) waits for it, so that the claim gives its jobs back first.
        self._claiming = asyncio.Lock()
        self._sweeps: set[asyncio.Task[None]] = set()

    # --- state ------------------------------------------------------------------------------

    def subscribed(self, namespace: str, queue: str) -> bool:
        """Whether the connection subscribed to the queue."""
        return queue in self._queues.get(namespace, ())

    def queues_in(self, namespace: str) -> set[str]:
        """The queues subscribed in a namespace."""
        return set(self._queues.get(namespace, ()))

    @property
    def is_worker(self) -> bool:
        """Whether the connection is subscribed to any queue."""
        return any(self._queues.values())

    @property
    def status(self) -> str:
        """Jobatator's worker status: `busy` while it holds a job, else `available`."""
        return "busy" if self.leases else "available"

    def id_in(self, namespace: str) -> str:
        """The connection's worker id in `namespace`: the session's in its first group, a
        new one in each other (worker records are keyed by id, one namespace each).
        """
        worker_id = self._ids.get(namespace)
        if worker_id is None:
            first = not self._ids
            worker_id = self.session.worker_id if first else new_connection_worker_id()
            self._ids[namespace] = worker_id
            self.session.hub.links[worker_id] = (self, namespace)
        return worker_id

    def held_in(self, namespace: str) -> list[LeaseRef]:
        """The leases held in `namespace`."""
        return [lease for ns, lease in self.leases.values() if ns == namespace]

    def wake(self) -> None:
        """Something changed (subscriptions, a job finished, DISPATCH): claim again."""
        self._changed.set()

    def drop(self, job_id: str) -> None:
        """The job is no longer this connection's: it may take the next one."""
        self.leases.pop(job_id, None)
        self._cancelled.discard(job_id)
        self.wake()
        if self._stopping and not self.leases:
            self.session.finish()

    def stop(self) -> None:
        """The server stops: claim nothing more; end the connection once it holds no job
        (now, if it holds none), so that a job held is still reported, not run again.
        """
        self._stopping = True
        self.wake()
        if not self.leases:
            self.session.finish()

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, namespace: str, queue: str) -> None:
        """Become a worker of the queue (`InvalidArgument`, `PermissionDenied` change nothing)."""
        check_name("queue", queue)
        queues = self._queues.setdefault(namespace, set())
        added = queue not in queues
        queues.add(queue)
        try:
            await self._register(namespace)
        except ShoalError:
            if added:
                self.remove(namespace, queue)
            raise
        if self.session.receives and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"shoal-tcp-{self.session.addr}")
        self.wake()

    async def unsubscribe(self, namespace: str, queue: str) -> None:
        """Stop taking the queue's jobs, and say so in the worker's record: it lists the
        queues left, or goes once the connection neither subscribes nor holds a job there.
        """
        self.remove(namespace, queue)
        async with self._claiming:  # a claim under way gives back what it took here
            await self._leave_if_idle(namespace)

    async def _leave_if_idle(self, namespace: str) -> None:
        if namespace not in self._ids:
            return
        if self._queues.get(namespace):
            with contextlib.suppress(PermissionDenied, Unauthenticated):
                await self._register(namespace)  # the unsubscription stands either way
        elif not self.held_in(namespace):
            service = self.session.hub.service
            await service.worker_gone(self._ids[namespace], "unsubscribed", namespace)
            self._forget(namespace)

    def remove(self, namespace: str, queue: str) -> None:
        """Stop taking the queue's jobs (a job held stays held)."""
        queues = self._queues.get(namespace)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._queues[namespace]
        self.wake()

    async def _register(self, namespace: str) -> None:
        guarded = self.session.require_guarded()
        now = guarded.service.clock.now()
        await guarded.register_worker(
            WorkerInfo(
                id=self.id_in(namespace),
                namespace=namespace,
                queues=tuple(sorted(self._queues.get(namespace, ()))),
                connected_at=self.session.connected_at,
                last_heartbeat=now,
                language="jobatator",
                host=self.session.addr,
                state=WorkerState.DRAINING if namespace in self._draining else WorkerState.IDLE,
            )
        )

    # --- claiming ---------------------------------------------------------------------------

    async def _run(self) -> None:
        ready = self.session.hub.service.ready
        while not self._closing:
            self._changed.clear()
            if self.leases or not self._queues or self._stopping:
                await self._changed.wait()
                continue
            seen = ready.generation
            try:
                if await self._claim():
                    continue
            except (PermissionDenied, Unauthenticated):
                await self._changed.wait()  # the user may no longer work here: until a new AUTH
                continue
            except Exception:  # a store hiccup: back off, never die
                logger.exception(
                    "claiming for a TCP worker failed",
                    extra={"event": "tcp.claim_failed", "worker_id": self.session.worker_id},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 1.0)
                continue
            await self._wait_ready(seen)

    async def _claim(self) -> bool:
        async with self._claiming:
            return await self._claim_once()

    async def _claim_once(self) -> bool:
        guarded = self.session.guarded
        if guarded is None:  # logged out by a failed AUTH: take nothing until logged in
            return False
        for namespace, queues in list(self._queues.items()):
            if namespace in self._draining:
                continue
            request = ClaimInput(self.id_in(namespace), tuple(sorted(queues)), namespace)
            jobs = await guarded.claim(request)
            if jobs and (
                namespace not in self._queues or namespace in self._draining or self._stopping
            ):
                # kicked, drained, unsubscribed or stopped while the claim ran: give them back
                await guarded.release([j.lease for j in jobs])
                continue
            for job in jobs:
                self.leases[job.id] = (job.namespace, job.lease)
                self.session.push(encode(dispatch_view(job)))
            if jobs:
                return True
        return False

    async def _wait_ready(self, seen: int) -> None:
        # `since`: a notice between the empty claim and these waits' first step counts.
        ready = self.session.hub.service.ready
        waits: list[asyncio.Future[object]] = [
            asyncio.ensure_future(ready.wait(namespace, tuple(queues), _POLL, since=seen))
            for namespace, queues in self._queues.items()
        ]
        waits.append(asyncio.ensure_future(self._changed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    # --- leases -----------------------------------------------------------------------------

    async def renew(self) -> None:
        """Renew the leases held (the server's heartbeat for clients that send none), and
        refresh the worker's records: an idle connection's too, which would otherwise show as
        lost and be forgotten (`ServiceSettings.forget_workers_after`) while it is open.
        """
        service, guarded = self.session.hub.service, self.session.guarded
        if guarded is not None and not guarded.authorizer.is_live(guarded.principal):
            return  # revoked: its leases run out, and the reaper gives its jobs back
        for namespace in self._beating():
            held = self.held_in(namespace)
            leases = [lease for lease in held if lease.job_id not in self._cancelled]
            worker_id = self.id_in(namespace)
            self._note(await service.heartbeat(leases, worker_id, namespace=namespace))

    def _beating(self) -> Iterator[str]:
        """The groups a heartbeat covers: those the connection works in, and those where it
        still holds a lease. Lazily: each is checked when the caller is done awaiting the one
        before it, so that a group left meanwhile (UNSUBSCRIBE, a kick) does not come back
        with a new id and no record.
        """
        for namespace in sorted(set(self._ids) | {ns for ns, _ in self.leases.values()}):
            if namespace in self._ids or self.held_in(namespace):
                yield namespace

    def _note(self, result: HeartbeatResult) -> None:
        for job_id in result.lost:
            self.drop(job_id)
        self._cancelled.update(result.cancel_requested)

    async def heartbeat(self) -> HeartbeatResult:
        """HEARTBEAT: renew every lease held, through the caller's rights."""
        guarded = self.session.require_guarded()
        renewed: list[str] = []
        lost: list[str] = []
        cancelled: list[str] = []
        for namespace in self._beating():  # an idle group's record too (`renew_leases` off)
            worker_id = self.id_in(namespace)
            leases = self.held_in(namespace)
            result = await guarded.heartbeat(leases, worker_id, namespace=namespace)
            self._note(result)
            renewed += result.renewed
            lost += result.lost
            cancelled += result.cancel_requested
        return HeartbeatResult(tuple(renewed), tuple(lost), tuple(cancelled))

    # --- what the group's admins ask ---------------------------------------------------------

    def drained(self, namespace: str) -> None:
        """Drain requested in `namespace`: finish what runs there, claim nothing more."""
        self._draining.add(namespace)
        self.wake()

    def kicked(self, namespace: str) -> None:
        """Kicked out of `namespace` (the service released its leases there and forgot its
        record): stop working there; a connection left with no group to work for hangs up.
        """
        self._queues.pop(namespace, None)
        worker_id = self._ids.get(namespace)
        self._forget(namespace)
        for job_id in [job_id for job_id, (ns, _) in self.leases.items() if ns == namespace]:
            self.drop(job_id)
        if worker_id is not None:
            sweep = asyncio.ensure_future(self._sweep(worker_id, namespace))
            self._sweeps.add(sweep)
            sweep.add_done_callback(self._sweeps.discard)
        if not self._ids:
            self.session.hang_up()
        self.wake()

    async def _sweep(self, worker_id: str, namespace: str) -> None:
        """What a claim racing the kick leased after it (the kick may come from another
        replica, after this one's claim committed) goes back too.
        """
        async with self._claiming:
            try:
                await self.session.hub.service.take_back(worker_id, "kicked", namespace)
            except ShoalError:
                logger.exception(
                    "taking back a kicked TCP worker's jobs failed",
                    extra={"event": "tcp.release_failed", "worker_id": worker_id},
                )

    def _forget(self, namespace: str) -> None:
        worker_id = self._ids.pop(namespace, None)
        if worker_id is not None:
            self.session.hub.links.pop(worker_id, None)
        self._draining.discard(namespace)

    async def close(self) -> None:
        """The connection is gone: stop claiming, release every lease, leave the membership."""
        self._closing = True
        self._changed.set()
        if self._task is not None:
            try:
                # Let a claim in flight finish, so its lease is released below with the rest.
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except TimeoutError:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._queues.clear()
        released: list[Job] = []
        for namespace, worker_id in list(self._ids.items()):
            try:
                released += await self.session.hub.service.worker_gone(
                    worker_id, "disconnected", namespace
                )
            except ShoalError:
                # its leases expire instead; the link must go anyway, the connection is gone
                logger.exception(
                    "releasing a TCP worker's jobs failed",
                    extra={"event": "tcp.release_failed", "worker_id": worker_id},
                )
            self._forget(namespace)
        self.leases.clear()
        if released:
            logger.info(
                "TCP worker %s left; %d jobs released",
                self.session.addr,
                len(released),
                extra={"event": "tcp.worker_left", "worker_id": self.session.worker_id},
            )
