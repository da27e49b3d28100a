"""The worker records' part of `QueueService`: workers join, resume a lost stream, are listed,
kicked, drained, leave, and are forgotten after a long silence. Import these names from
`shoal.core.service`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from shoal.core._service_base import ServiceBase
from shoal.core.errors import Conflict, InvalidArgument, NotFound, ShoalError
from shoal.core.events import Event
from shoal.core.ids import server_assigned, worker_id_of
from shoal.core.model import Job, LeaseRef, WorkerInfo, WorkerState
from shoal.core.ports import Resumed, WorkerResume
from shoal.core.validation import Limits, check_name

__all__ = ["ResumeInput", "WorkerMembership", "check_resume"]

logger = logging.getLogger(__name__)

#: The longest secret `resume_worker` takes (the service issues 32 characters).
_MAX_SECRET = 128


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


class WorkerMembership(ServiceBase):
    """The operations of `QueueService` on worker records (the cluster membership)."""

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
            await self.find_worker(request.namespace, previous)
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
        await self.find_worker(namespace, worker_id)
        self.publish_everywhere(
            Event("worker.kick", namespace, self.clock.now(), worker_id=worker_id)
        )
        return await self.worker_gone(worker_id, "kicked", namespace)

    async def drain_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        """Ask a worker to finish what it runs and take nothing more."""
        worker = replace(await self.find_worker(namespace, worker_id), state=WorkerState.DRAINING)
        await self.store.upsert_worker(worker)
        drain = Event("worker.drain", namespace, self.clock.now(), worker_id=worker_id)
        self.publish_everywhere(drain)
        return worker

    async def find_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        """The worker `worker_id` of `namespace` (one record read), or `NotFound`."""
        worker = await self.store.get_worker(worker_id)
        if worker is None or worker.namespace != namespace:
            raise NotFound(f"worker {worker_id} not found in namespace {namespace!r}")
        return worker


def _shown_state(worker: WorkerInfo, now: float, lease_ttl: float) -> WorkerState:
    if worker.state is WorkerState.DRAINING:
        return worker.state
    if now - worker.last_heartbeat > lease_ttl:
        return WorkerState.LOST
    return WorkerState.BUSY if worker.running else WorkerState.IDLE
