"""`shoal.v1.WorkerService`: the worker stream, the unary pull path, and membership."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from shoal.core.auth import Action
from shoal.core.errors import InvalidArgument, ShoalError, Unavailable
from shoal.core.ids import check_chosen_worker_id, new_worker_session, worker_id_of
from shoal.core.model import WorkerInfo
from shoal.core.service import ClaimInput, QueueService, ResumeInput, check_resume
from shoal.core.validation import MAX_MESSAGE_BYTES, check_lease_ttl, check_name, check_text
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import Callers
from shoal.protocols.grpc._status import abort, mapped
from shoal.protocols.grpc._stream import PUSHED, Session, check_hello, first_message
from shoal.protocols.grpc.gen.shoal.v1 import model_pb2, workers_pb2, workers_pb2_grpc

__all__ = ["WorkerServicer"]

logger = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class WorkerServicer(workers_pb2_grpc.WorkerServiceServicer):
    """Workers' sessions and calls; every method calls `QueueService` only."""

    def __init__(
        self, service: QueueService, callers: Callers, max_message_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        self._service = service
        self._callers = callers
        self._max_message_bytes = max_message_bytes
        #: Open stream sessions by worker id: a shutdown drains them, events reach them.
        self.sessions: dict[str, Session] = {}
        self._router: asyncio.Task[None] | None = None
        #: Set when the server stops: no new session or fetch is taken on.
        self.closing = False
        self._closing_reason = ""
        self._cleanups: set[asyncio.Task[None]] = set()

    def drain_all(self, reason: str) -> None:
        """Take no new work, and ask every connected worker to finish what it runs and leave."""
        self.closing, self._closing_reason = True, reason
        for session in list(self.sessions.values()):
            session.drain(reason)

    async def close(self) -> None:
        """Stop routing events (the listener has stopped)."""
        if self._router is not None:
            self._router.cancel()
            await asyncio.gather(self._router, return_exceptions=True)
            self._router = None

    def _route_events(self) -> None:
        # One subscription for every session, routed by worker id: an event costs one filter
        # call whatever the number of connected workers.
        if self._router is not None and not self._router.done():
            return
        sessions = self.sessions
        subscription = self._service.events.subscribe(
            lambda event: event.worker_id in sessions, kinds=PUSHED
        )

        async def route() -> None:
            async for event in subscription:
                session = sessions.get(event.worker_id or "")
                if session is not None:
                    session.on_event(event)

        self._router = asyncio.create_task(route())

    async def Connect(
        self, request_iterator: AsyncIterator[Any], context: Context
    ) -> AsyncIterator[workers_pb2.ServerMessage]:
        """A worker's session: hello, then credits, assignments, heartbeats and outcomes."""
        first = await first_message(request_iterator)
        if first is None:
            return
        try:
            if self.closing:
                raise Unavailable("the server is shutting down")
            session = await self._open(check_hello(first))
        except ShoalError as error:
            await abort(context, error)
        self.sessions[session.worker_id] = session
        if self.closing:  # drain_all ran while the hello was stored: it did not see this one
            session.drain(self._closing_reason)
        self._route_events()
        logger.info(
            "worker %s connected",
            session.worker_id,
            extra={"event": "worker.connected", "worker_id": session.worker_id},
        )
        reason = "disconnected"
        try:
            yield session.welcome()
            async for message in session.run(request_iterator):
                yield message
        except BaseException:
            reason = "connection lost"
            raise
        finally:
            # grpc may cancel this handler more than once as the call dies; the release runs
            # in its own task so that a second cancellation cannot cut it short (leaving the
            # jobs released but no claimer woken).
            cleanup = asyncio.create_task(self._close(session, reason))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            await asyncio.shield(cleanup)

    async def _close(self, session: Session, reason: str) -> None:
        try:
            released = await session.close(reason)
        except ShoalError:
            logger.exception(
                "releasing a worker's leases failed",
                extra={"event": "grpc.stream.error", "worker_id": session.worker_id},
            )
        else:
            logger.info(
                "worker %s left (%s); %d job(s) released",
                session.worker_id,
                reason,
                len(released),
                extra={"event": "worker.disconnected", "worker_id": session.worker_id},
            )
        finally:
            self.sessions.pop(session.worker_id, None)

    async def _open(self, hello: workers_pb2.Hello) -> Session:
        check_lease_ttl(hello.lease_ttl or None)  # 0: the service's
        if not 0 <= hello.lookahead < math.inf:  # NaN fails both comparisons
            raise InvalidArgument("lookahead", "must be a finite number >= 0")
        now = self._service.clock.now()
        worker_id, secret = new_worker_session()
        worker = WorkerInfo(
            id=worker_id,
            namespace=codec.namespace(hello.namespace),
            queues=tuple(hello.queues),
            connected_at=now,
            last_heartbeat=now,
            tasks=tuple(hello.tasks),
            concurrency=hello.concurrency or 1,
            language=hello.language or "unknown",
            host=hello.host,
            pid=hello.pid,
        )
        if not worker.queues:
            raise InvalidArgument("queues", "name at least one queue")
        for name in (*worker.queues, *worker.tasks):
            check_name("queues" if name in worker.queues else "tasks", name)
        check_text("host", worker.host)  # stored with the worker's record (PostgreSQL: no NUL)
        check_text("language", worker.language)
        resume = self._resume_input(hello, worker)
        service = self._callers.service()
        worker = await service.register_worker(worker)
        lease_ttl = hello.lease_ttl or service.settings.lease_ttl
        session = Session(
            service, worker, lease_ttl, hello.lookahead, secret, self._max_message_bytes
        )
        if resume is not None:
            await self._resume(session, resume)
        return session

    def _resume_input(self, hello: workers_pb2.Hello, worker: WorkerInfo) -> ResumeInput | None:
        """What the hello says of a lost stream, checked before anything is recorded."""
        held = tuple(codec.leases_from_pb(hello.held))
        if not hello.previous_session_secret:
            if held:
                raise InvalidArgument("held", "needs the previous_session_secret of its stream")
            return None
        resume = ResumeInput(worker.id, hello.previous_session_secret, held, worker.namespace)
        check_resume(resume, self._service.settings.limits)
        return resume

    async def _resume(self, session: Session, resume: ResumeInput) -> None:
        try:
            resumed = await session.service.resume_worker(resume)
        except Exception:
            await session.service.worker_gone(session.worker_id, "resume refused")
            raise
        session.held.update((job.id, job.lease_token or "") for job in resumed.kept)
        previous = worker_id_of(resume.secret)
        lost = self.sessions.get(previous)
        if lost is not None and lost.worker.namespace == session.worker.namespace:
            # this server has not seen that stream end yet: it takes no more
            lost.drain("resumed on a new stream")
        logger.info(
            "worker %s resumes %s: %d lease(s) kept, %d job(s) given back",
            session.worker_id,
            previous,
            len(resumed.kept),
            len(resumed.released),
            extra={"event": "worker.resumed", "worker_id": session.worker_id},
        )

    # --- the pull path ----------------------------------------------------------------------

    @mapped
    async def Fetch(
        self, request: workers_pb2.FetchRequest, context: Context
    ) -> workers_pb2.FetchResponse:
        """Lease up to `limit` jobs, waiting up to `wait` seconds for one."""
        if self.closing:
            raise Unavailable("the server is shutting down")
        if request.limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        check_chosen_worker_id("worker_id", request.worker_id)
        jobs = await self._callers.service().claim(
            ClaimInput(
                worker_id=request.worker_id,
                queues=tuple(request.queues),
                namespace=codec.namespace(request.namespace),
                limit=request.limit or 1,
                wait=codec.wait_seconds("wait", request.wait),
                tasks=tuple(request.tasks) or None,
                lease_ttl=request.lease_ttl or None,
                lookahead=request.lookahead,
            )
        )
        limit = self._max_message_bytes
        messages, too_large = codec.assignments_within(jobs, limit)
        sent = list(messages[0][0].assignments.assignments) if messages else []
        service, taken = self._callers.service(), {item.job.id for item in sent}
        for job, size in too_large:  # no response can carry it: it fails
            await service.fail(job.lease, codec.too_large_error(size, limit), None)
        failed = {job.id for job, _ in too_large}
        if rest := [job for job in jobs if job.id not in taken and job.id not in failed]:
            # too large together for one response: they go back unstarted (the attempt does
            # not count) for the next fetch, rather than stay leased to nobody
            await service.release([job.lease for job in rest])
        return workers_pb2.FetchResponse(assignments=sent)

    @mapped
    async def Heartbeat(
        self, request: workers_pb2.HeartbeatRequest, context: Context
    ) -> workers_pb2.HeartbeatResponse:
        """Renew leases, all at once."""
        result = await self._callers.service().heartbeat(
            codec.leases_from_pb(request.leases),
            request.worker_id or None,
            lease_ttl=request.lease_ttl or None,
            namespace=codec.namespace(request.namespace),
        )
        return workers_pb2.HeartbeatResponse(
            renewed=result.renewed, lost=result.lost, cancel_requested=result.cancel_requested
        )

    @mapped
    async def Complete(
        self, request: workers_pb2.CompleteRequest, context: Context
    ) -> model_pb2.Job:
        """The job succeeded."""
        result = request.result if request.HasField("result") else None
        lease = codec.lease_from_pb(request.job_id, request.token)
        return codec.job_to_pb(await self._callers.service().complete(lease, result))

    @mapped
    async def Fail(self, request: workers_pb2.FailRequest, context: Context) -> model_pb2.Job:
        """The attempt failed."""
        lease = codec.lease_from_pb(request.job_id, request.token)
        delay = request.retry_delay if request.HasField("retry_delay") else None
        job = await self._callers.service().fail(lease, codec.error_from_pb(request.error), delay)
        return codec.job_to_pb(job)

    # --- membership -------------------------------------------------------------------------

    @mapped
    async def ListWorkers(
        self, request: workers_pb2.ListWorkersRequest, context: Context
    ) -> workers_pb2.ListWorkersResponse:
        """The cluster membership."""
        if request.namespace:
            workers = await self._callers.service().list_workers(request.namespace)
        else:  # every namespace the caller may read
            workers = [
                worker
                for worker in await self._service.list_workers(None)
                if self._callers.allows(Action.READ, worker.namespace)
            ]
        now = self._service.clock.now()
        return workers_pb2.ListWorkersResponse(
            workers=[codec.worker_to_pb(worker, now) for worker in workers]
        )

    @mapped
    async def KickWorker(
        self, request: workers_pb2.KickWorkerRequest, context: Context
    ) -> workers_pb2.KickWorkerResponse:
        """Disconnect a worker; its leases end now."""
        namespace = codec.namespace(request.namespace)
        jobs = await self._callers.service().kick_worker(namespace, request.worker_id)
        await self._callers.audit("worker.kick", namespace, request.worker_id)
        return workers_pb2.KickWorkerResponse(released=[job.id for job in jobs])

    @mapped
    async def DrainWorker(
        self, request: workers_pb2.DrainWorkerRequest, context: Context
    ) -> model_pb2.Worker:
        """Ask a worker to finish what it runs and take nothing more."""
        namespace = codec.namespace(request.namespace)
        worker = await self._callers.service().drain_worker(namespace, request.worker_id)
        await self._callers.audit("worker.drain", namespace, request.worker_id)
        return codec.worker_to_pb(worker, self._service.clock.now())
