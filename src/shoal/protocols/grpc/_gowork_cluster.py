"""go-work's members and the push of its tasks to them, over `QueueService`.

A go-work worker is a gRPC server: it joins with its address, heartbeats its status, and is
dialled with `worker.v1.WorkerService/StartWork` when it is alive and idle. Here each member is
a shoal worker (language `go-work`) of the queue `go-work`; a task pushed to it is a job leased
to it, renewed by its heartbeats, finished by `TaskComplete`. Unlike the seed, a failed push
moves on to the next member (the seed aborted its whole pass), a cancelled running task is
stopped and ends `cancelled` (the seed let a late completion turn it `completed`), a task
whose worker died runs again, and a member silent for twice the heartbeat timeout is forgotten
(the seed kept it, "left", for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import grpc
import grpc.aio

from shoal.core.errors import InvalidArgument, LeaseLost, NotFound, ShoalError
from shoal.core.events import Event
from shoal.core.ids import check_chosen_worker_id
from shoal.core.model import DEFAULT_NAMESPACE, Job, JobError, JobQuery, LeaseRef, WorkerInfo
from shoal.core.service import ClaimInput, QueueService
from shoal.protocols.grpc.gen.worker.v1 import worker_pb2, worker_pb2_grpc

logger = logging.getLogger(__name__)

#: The queue, task name and worker language go-work's tasks and members map to.
QUEUE = "go-work"
TASK = "go-work"
LANGUAGE = "go-work"
_PUSH_TIMEOUT = 5.0
#: Seconds before the dispatch tries again after the store failed it.
_RETRY_AFTER = 1.0
#: A member silent for this many heartbeat timeouts is removed as if it had left. For the first
#: timeout it has only "left" (go-work's status), and a heartbeat brings it back: go-work's worker
#: never joins again by itself.
_FORGET_AFTER = 2
#: The only events the cluster acts on (a cancelled go-work job stops its member).
_CANCELS = ("job.cancel_requested",)


def tag_of(task_id: str) -> str:
    """The tag that names a job's go-work task id."""
    return f"go-work:{task_id}"


def task_id_of(job: Job) -> str:
    """The go-work task id of a job (from its tag)."""
    return next((tag[8:] for tag in job.tags if tag.startswith("go-work:")), "")


@dataclass
class Member:
    """A joined go-work worker as the leader sees it."""

    id: str
    address: str
    #: The last heartbeat's status: idle, busy, failed, or unknown before the first.
    status: str = "unknown"
    last_beat: float | None = None
    #: The job pushed to it and its go-work task id, until it completes.
    lease: LeaseRef | None = None
    task_id: str = ""
    channel: grpc.aio.Channel | None = None
    joined_at: float = 0.0

    def alive(self, now: float, timeout: float) -> bool:
        """Whether it heartbeated within `timeout`."""
        return self.last_beat is not None and now - self.last_beat <= timeout

    def describe(self, now: float, timeout: float) -> str:
        """go-work's status text: `<alive|left|unknown>, <idle|busy|failed|unknown>`."""
        if self.last_beat is None:
            return "unknown, unknown"
        return f"alive, {self.status}" if self.alive(now, timeout) else "left, unknown"

    def silent(self, now: float, timeout: float) -> bool:
        """Whether nothing was heard from it (heartbeat, or its join) within `timeout`."""
        heard = self.joined_at if self.last_beat is None else self.last_beat
        return now - heard > timeout


class GoWorkCluster:
    """Members, and the duty that pushes queued tasks to idle members (`run` / `stop`)."""

    def __init__(self, service: QueueService, heartbeat_timeout: float = 30.0) -> None:
        self.service = service
        #: A member silent this long has left; its task's lease lasts as long.
        self.heartbeat_timeout = heartbeat_timeout
        self.members: dict[str, Member] = {}
        self._changed = asyncio.Event()
        self._stopping = False
        self._next_sweep = 0.0

    # --- membership -------------------------------------------------------------------------

    async def join(self, member_id: str, address: str) -> None:
        """Add (or replace) a member; a replaced member's task is let go."""
        if not member_id:
            raise InvalidArgument("id", "id required")
        check_chosen_worker_id("id", member_id)
        if not address:
            raise InvalidArgument("address", "address required")
        if member_id in self.members:
            await self.leave(member_id)
        now = self.service.clock.now()
        await self.service.register_worker(
            WorkerInfo(
                id=member_id,
                namespace=DEFAULT_NAMESPACE,
                queues=(QUEUE,),
                connected_at=now,
                last_heartbeat=now,
                tasks=(TASK,),
                language=LANGUAGE,
                host=address,
            )
        )
        self.members[member_id] = Member(member_id, address, joined_at=now)

    async def leave(self, member_id: str, reason: str = "left the go-work cluster") -> None:
        """Remove a member; its task runs again elsewhere."""
        member = self.members.pop(member_id, None)
        if member is None:
            raise NotFound("member not found")
        if member.channel is not None:
            await member.channel.close(None)
        await self.service.worker_gone(member_id, reason, DEFAULT_NAMESPACE)

    async def forget_silent(self) -> None:
        """Remove the members silent for `_FORGET_AFTER` heartbeat timeouts (see there)."""
        limit = _FORGET_AFTER * self.heartbeat_timeout
        for member in list(self.members.values()):
            # checked now, not before the loop: a removal awaits, and a member may heartbeat
            # or join again meanwhile
            current = self.members.get(member.id) is member
            if not current or not member.silent(self.service.clock.now(), limit):
                continue
            try:
                await self.leave(member.id, "silent past the go-work heartbeat timeout")
            except ShoalError as exc:  # the store failed: the record stays, shown lost
                logger.warning(
                    "go-work member %s could not be removed: %s",
                    member.id,
                    exc,
                    extra={"event": "gowork.forget_failed", "worker_id": member.id},
                )

    async def heartbeat(self, member_id: str, status: str) -> None:
        """Record a member's status and renew the lease of the task it runs."""
        member = self.members.get(member_id)
        if member is None:
            raise NotFound("member not found")
        member.status = status
        member.last_beat = self.service.clock.now()
        leases = [member.lease] if member.lease is not None else []
        result = await self.service.heartbeat(leases, member_id, namespace=DEFAULT_NAMESPACE)
        if result.lost:
            member.lease, member.task_id = None, ""
        self._changed.set()

    # --- tasks ------------------------------------------------------------------------------

    async def find(self, task_id: str) -> Job:
        """The newest job of a go-work task id, or `NotFound`."""
        page = await self.service.list_jobs(JobQuery(queue=QUEUE, tag=tag_of(task_id), limit=1))
        if not page.jobs:
            raise NotFound("task not found")
        return page.jobs[0]

    async def complete(self, task_id: str, error: str | None) -> Job:
        """A member reports its task done (with an error message if it failed)."""
        member = next((m for m in self.members.values() if m.task_id == task_id), None)
        if member is None or member.lease is None:
            await self.find(task_id)  # NotFound for an unknown task
            raise LeaseLost(f"task {task_id} is not running on a member")
        lease = member.lease
        member.lease, member.task_id, member.status = None, "", "idle"
        self._changed.set()
        if error is None:
            return await self.service.complete(lease, None)
        # go-work never retries a task that reported an error
        return await self.service.fail(lease, JobError("Error", error, retryable=False))

    # --- the push duty ----------------------------------------------------------------------

    async def run(self) -> None:
        """Push queued tasks to alive, idle members until `stop()`."""
        subscription = self.service.events.subscribe(self._is_cancel, kinds=_CANCELS)
        watcher = asyncio.create_task(self._stop_cancelled(subscription))
        try:
            while not self._stopping:
                try:
                    await self._push_once()
                except ShoalError as exc:
                    # a database restarting: nothing else would start the duty again
                    logger.warning(
                        "go-work dispatch failed (%s); retrying in %g s",
                        exc.message,
                        _RETRY_AFTER,
                        extra={"event": "gowork.dispatch_failed"},
                    )
                    await asyncio.sleep(_RETRY_AFTER)
        finally:
            subscription.close()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            for member in self.members.values():
                if member.channel is not None:
                    await member.channel.close(None)

    async def _push_once(self) -> None:
        """Sweep the members, then push a queued task to one idle member (or wait for one)."""
        await self._sweep()
        member = self._idle_member()
        if member is None:
            self._changed.clear()
            # bounded, so that members who all fell silent are still forgotten
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat_timeout):
                    await self._changed.wait()
            return
        jobs = await self.service.claim(
            ClaimInput(
                worker_id=member.id,
                queues=(QUEUE,),
                wait=_PUSH_TIMEOUT,
                lease_ttl=self.heartbeat_timeout,
            )
        )
        for job in jobs:
            await self._push(member, job)

    def stop(self) -> None:
        """Ask `run()` to return."""
        self._stopping = True
        self._changed.set()

    async def _sweep(self) -> None:
        now = self.service.clock.now()
        if now >= self._next_sweep:
            self._next_sweep = now + self.heartbeat_timeout
            await self.forget_silent()

    def _idle_member(self) -> Member | None:
        now = self.service.clock.now()
        for member in self.members.values():
            if member.lease is None and member.status == "idle":
                if member.alive(now, self.heartbeat_timeout):
                    return member
        return None

    def _stub(self, member: Member) -> worker_pb2_grpc.WorkerServiceStub:
        if member.channel is None:
            member.channel = grpc.aio.insecure_channel(member.address)
        return worker_pb2_grpc.WorkerServiceStub(member.channel)  # type: ignore[no-untyped-call]

    async def _push(self, member: Member, job: Job) -> None:
        lease = job.lease
        task_id = next((t[len("go-work:") :] for t in job.tags if t.startswith("go-work:")), "")
        member.lease, member.task_id = lease, task_id
        request = worker_pb2.StartWorkRequest(
            id=task_id, payload=job.payload.decode(errors="replace")
        )
        try:
            started = (await self._stub(member).StartWork(request, timeout=_PUSH_TIMEOUT)).success
        except grpc.aio.AioRpcError as exc:
            logger.warning(
                "go-work member %s refused task %s: %s",
                member.id,
                task_id,
                exc.details(),
                extra={"event": "gowork.push_failed", "worker_id": member.id, "job_id": job.id},
            )
            started = False
        if not started:
            member.lease, member.task_id, member.status = None, "", "busy"
            await self.service.release([lease])  # not started: the attempt does not count

    def _is_cancel(self, event: Event) -> bool:
        return event.kind == "job.cancel_requested" and event.queue == QUEUE

    async def _stop_cancelled(self, subscription: object) -> None:
        async for event in subscription:  # type: ignore[attr-defined]
            await self.stop_task(event.job_id)

    async def stop_task(self, job_id: str) -> None:
        """Stop a cancelled job on the member running it (StopWork); it ends cancelled."""
        member = next(
            (m for m in self.members.values() if m.lease and m.lease.job_id == job_id), None
        )
        if member is None or member.lease is None:
            return
        lease, task_id = member.lease, member.task_id
        # taken before any await, so that a second stop of the same job finds nothing
        member.lease, member.task_id, member.status = None, "", "idle"
        with contextlib.suppress(grpc.aio.AioRpcError):
            request = worker_pb2.StopWorkRequest(id=task_id)
            await self._stub(member).StopWork(request, timeout=_PUSH_TIMEOUT)
        with contextlib.suppress(ShoalError):
            await self.service.fail(lease, JobError("Cancelled", "stopped", retryable=False))
        self._changed.set()
