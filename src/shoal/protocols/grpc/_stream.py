"""One worker's stream session: credits, batched assignments, heartbeats, outcomes, and the
cancellations and drain requests pushed to it.

Two tasks feed one outbox that the stream drains: the reader handles the worker's messages,
and the dispatcher claims jobs while the worker has credits (waiting on the service's ready
signal, never polling); events meant for this worker arrive through `on_event`. Both wait
while the outbox is full, the reader also while the outcomes being stored hold as much (see
`_outbox`): the worker's transport then holds it back instead of the server growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from shoal.core.errors import InvalidArgument, LeaseLost, NotFound, ShoalError
from shoal.core.events import Event
from shoal.core.model import Job, LeaseRef, WorkerInfo
from shoal.core.service import ClaimInput
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import CallerService
from shoal.protocols.grpc._decoding import Malformed
from shoal.protocols.grpc._outbox import Outbox, Storing
from shoal.protocols.grpc._status import error_message
from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2

logger = logging.getLogger(__name__)

#: Longest single claim wait; the dispatcher loops, so this only bounds how stale a drain is.
_CLAIM_WAIT = 5.0
#: Messages the outbox may hold, and what they may take, before the reader and the dispatcher
#: wait (a worker that reads leaves a few there); the outcome batches being stored alike.
OUTBOX_MESSAGES = 4096
OUTBOX_BYTES = 32 * 1024 * 1024
#: The events a session acts on (routed to it by worker id, see `WorkerServicer`).
PUSHED = frozenset({"job.cancel_requested", "worker.drain", "worker.kick"})
Message = workers_pb2.ServerMessage


class Session:
    """The server side of one `WorkerService.Connect` stream."""

    def __init__(
        self,
        service: CallerService,
        worker: WorkerInfo,
        lease_ttl: float,
        lookahead: float = 0.0,
        secret: str = "",
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.service = service
        #: The listener's message limit, told to the worker (it bounds its results by it).
        self.max_message_bytes = max_message_bytes
        self.worker = worker
        #: Given to the worker only: it names this stream with it if the stream breaks.
        self.secret = secret
        self.lease_ttl = lease_ttl
        #: How early the worker takes scheduled jobs (it holds them until their run_at).
        self.lookahead = lookahead
        self.credits = 0
        self.draining = False
        #: Set when the worker's record and leases are already gone (kicked).
        self.gone = False
        #: Set by a kick: the stream ends, and claims no more meanwhile.
        self.kicked = False
        #: Jobs assigned on this stream and not yet finished: job id -> lease token.
        self.held: dict[str, str] = {}
        #: The service without the per-call rights check, for the outcomes of jobs claimed on
        #: this stream: their claim checked the `work` right in this worker's namespace, and
        #: the store still fences their lease tokens.
        self._own = service.service
        self._outbox = Outbox(OUTBOX_MESSAGES, OUTBOX_BYTES)
        self._credit = asyncio.Event()
        #: Outcome batches being stored (the reader does not wait for them, see `_read`).
        self._storing = Storing(OUTBOX_MESSAGES, OUTBOX_BYTES)
        #: The latest progress of each job not stored yet, and the task storing them. The
        #: reader does not wait for a progress write: behind a slow one (a lock wait, a
        #: checkpoint) the worker's messages piled up, and the native framing ends a call
        #: whose handler takes none for 5 s, and with it every lease of the stream.
        self._progress: dict[str, tuple[LeaseRef, float]] = {}
        self._progress_writer: asyncio.Task[None] | None = None
        #: The job whose progress the writer is storing now, and that write.
        self._writing: tuple[str, asyncio.Future[None]] | None = None

    @property
    def worker_id(self) -> str:
        """The id the server gave this worker."""
        return self.worker.id

    def welcome(self) -> Message:
        """The answer to the worker's hello."""
        return Message(
            welcome=workers_pb2.Welcome(
                worker_id=self.worker_id,
                heartbeat_interval=self.service.settings.heartbeat_interval,
                lease_ttl=self.lease_ttl,
                session_secret=self.secret,
                max_message_bytes=self.max_message_bytes,
                max_payload_bytes=self.service.settings.limits.max_payload_bytes,
                max_credits=self.service.settings.limits.max_batch,
            )
        )

    def drain(self, reason: str) -> None:
        """Take no more jobs, and ask the worker to finish what it runs and leave."""
        if not self.draining:
            self.draining = True
            self._credit.set()
            self._send(Message(drain=workers_pb2.Drain(reason=reason)))

    async def run(self, requests: AsyncIterator[Any]) -> AsyncIterator[Message]:
        """The messages to send, until the worker hangs up or is kicked."""
        tasks = [
            asyncio.create_task(self._read(requests)),
            asyncio.create_task(self._dispatch()),
        ]
        for task in tasks:
            task.add_done_callback(self._task_done)
        try:
            while (message := await self._outbox.get()) is not None:
                yield message
        finally:
            if self._progress_writer is not None:
                tasks.append(self._progress_writer)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, reason: str) -> list[Job]:
        """The stream ended: the worker's leases end now (unless a kick already did that)."""
        await self._storing.all_done()  # outcomes sent before the end are stored first
        if self.kicked:
            # kick_worker released what the stream held then and forgot the worker; a claim
            # that raced the kick may have leased it more since, which no one would deliver
            return await self._own.take_back(self.worker_id, "kicked", self.worker.namespace)
        if self.gone:
            return []
        self.gone = True
        return await self.service.worker_gone(self.worker_id, reason)

    def _send(self, message: Message | None, size: int | None = None) -> None:
        if size is None:
            size = 0 if message is None else message.ByteSize()
        self._outbox.put(message, size)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "worker stream task failed",
                exc_info=task.exception(),
                extra={"event": "grpc.stream.error", "worker_id": self.worker_id},
            )
            self._send(None)

    # --- the worker's messages --------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[Any]) -> None:
        outbox, storing = self._outbox, self._storing
        async for message in requests:
            if outbox.full or storing.full:
                await self._make_room()
            if not isinstance(message, Malformed) and message.WhichOneof("kind") == "outcomes":
                # Not waited for: the next batch is read meanwhile, and both can be stored in
                # one group commit.
                task = asyncio.create_task(self._outcomes(message.outcomes))
                storing.add(task, message.ByteSize())
                task.add_done_callback(self._task_done)
                continue
            try:
                await self._handle(message)
            except ShoalError as error:
                self._send(Message(error=error_message(error)))
        # The worker closed its side: the session ends once the outcomes it sent are acked.
        await self._storing.all_done()
        self._send(None)

    async def _make_room(self) -> None:
        """Until the outbox and the outcomes being stored are within their bounds (neither
        needs the reader: the stream's writer empties one, the store the other).
        """
        while True:
            if self._outbox.full:
                await self._outbox.room()
            elif self._storing.full:
                await self._storing.one_done()
            else:
                return

    async def _handle(self, message: workers_pb2.WorkerMessage | Malformed) -> None:
        if isinstance(message, Malformed):
            raise message.error()
        kind = message.WhichOneof("kind")
        if kind == "credit":
            self._grant(message.credit.credits)
        elif kind == "heartbeat":
            try:
                await self._heartbeat(message.heartbeat)
            except ShoalError as error:
                # A worker pairs acks with its heartbeats in order: a refused one still gets
                # its (empty) ack after the error, or every later ack answers the wrong one.
                self._send(Message(error=error_message(error)))
                self._send(Message(heartbeat_ack=workers_pb2.HeartbeatAck()))
        elif kind == "progress":
            progress = message.progress
            lease = codec.lease_from_pb(progress.job_id, progress.token)
            self._progress[progress.job_id] = (lease, progress.progress)
            if self._progress_writer is None:
                self._progress_writer = asyncio.create_task(self._write_progress())
        elif kind == "release":
            for given in message.release.leases:  # a job given back keeps its progress too
                await self._store_progress_now(given.job_id)
            jobs = await self.service.release(codec.leases_from_pb(message.release.leases))
            self._forget(lease.job_id for lease in message.release.leases)
            self._ack(jobs)
        elif kind == "hello":
            raise InvalidArgument("hello", "this stream already said hello")
        else:
            raise InvalidArgument("kind", "the message is empty")

    def _grant(self, credits: int) -> None:
        limit = self.service.settings.limits.max_batch
        if credits < 0:
            raise InvalidArgument("credits", "must not be negative")
        if self.credits + credits > limit:
            raise InvalidArgument("credits", f"at most {limit} may be outstanding")
        self.credits += credits
        self._credit.set()

    async def _heartbeat(self, heartbeat: workers_pb2.Heartbeat) -> None:
        if heartbeat.leases:
            leases = codec.leases_from_pb(heartbeat.leases)
        else:
            leases = [LeaseRef(job_id, token) for job_id, token in self.held.items()]
        result = await self.service.heartbeat(
            leases, self.worker_id, lease_ttl=self.lease_ttl, namespace=self.worker.namespace
        )
        self._forget(result.lost)
        self._send(
            Message(
                heartbeat_ack=workers_pb2.HeartbeatAck(
                    renewed=result.renewed,
                    lost=result.lost,
                    cancel_requested=result.cancel_requested,
                )
            )
        )

    async def _write_progress(self) -> None:
        try:
            while self._progress:
                job_id = next(iter(self._progress))
                lease, value = self._progress.pop(job_id)
                write = asyncio.ensure_future(self.service.set_progress(lease, value))
                self._writing = job_id, write
                try:
                    await write
                except ShoalError as error:
                    # Not the job's id: a worker takes an error naming a job as the answer to
                    # that job's outcome, which a refused progress report is not.
                    self._send(Message(error=error_message(error)))
                finally:
                    self._writing = None
        finally:
            self._progress_writer = None

    async def _store_progress_now(self, job_id: str) -> None:
        """Store the job's progress still waiting for the writer: a job that fails or is given
        back keeps the progress it reached, and its worker sent the last value just before.
        """
        # The writer may be storing an older value of the job, then take the latest itself:
        # the failure or release must come after both.
        while (writing := self._writing) is not None and writing[0] == job_id:
            await asyncio.wait([writing[1]])
        pending = self._progress.pop(job_id, None)
        if pending is not None:
            with contextlib.suppress(ShoalError):  # the outcome is stored all the same
                await self.service.set_progress(*pending)

    async def _outcomes(self, outcomes: workers_pb2.Outcomes) -> None:
        for completion in outcomes.completed:
            self._progress.pop(completion.job_id, None)  # a success sets 1.0
        # The outcomes of a batch go to the store together, so that it can commit them as one
        # group (SQLite merges concurrent completions into one statement).
        results = await asyncio.gather(
            *(self._complete(item) for item in outcomes.completed),
            *(self._fail(item) for item in outcomes.failed),
        )
        done = [job for job in results if job is not None]
        self._forget(job.id for job in done)
        self._ack(done)

    async def _complete(self, completion: workers_pb2.Completion) -> Job | None:
        try:
            lease = codec.lease_from_pb(completion.job_id, completion.token)
            result = completion.result if completion.HasField("result") else None
            if self.held.get(lease.job_id) == lease.token:
                return await self._own.complete(lease, result)
            return await self.service.complete(lease, result)
        except ShoalError as error:
            self._refused(completion.job_id, completion.token, error)
            return None

    async def _fail(self, failure: workers_pb2.Failure) -> Job | None:
        await self._store_progress_now(failure.job_id)
        try:
            lease = codec.lease_from_pb(failure.job_id, failure.token)
            delay = failure.retry_delay if failure.HasField("retry_delay") else None
            error = codec.error_from_pb(failure.error)
            if self.held.get(lease.job_id) == lease.token:
                return await self._own.fail(lease, error, delay)
            return await self.service.fail(lease, error, delay)
        except ShoalError as error:
            self._refused(failure.job_id, failure.token, error)
            return None

    def _refused(self, job_id: str, token: str, error: ShoalError) -> None:
        # A lease that ended (or a job that is gone) before a heartbeat said so is no longer
        # held: kept, it would stay for the life of the stream. Other refusals may be retried.
        if isinstance(error, LeaseLost | NotFound) and self.held.get(job_id) == token:
            del self.held[job_id]
        self._send(Message(error=error_message(error, job_id)))

    def _forget(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self.held.pop(job_id, None)

    def _ack(self, jobs: list[Job]) -> None:
        if jobs:
            self._send(codec.acks_to_pb(jobs))

    # --- dispatch and pushes ----------------------------------------------------------------

    async def _dispatch(self) -> None:
        worker = self.worker
        while True:
            while self.credits <= 0 or self.draining:
                self._credit.clear()
                await self._credit.wait()
            if self._outbox.full:  # the worker has not read what it was sent: claim no more
                await self._outbox.room()
                continue
            claim = ClaimInput(
                worker_id=self.worker_id,
                queues=worker.queues,
                namespace=worker.namespace,
                limit=self.credits,
                wait=_CLAIM_WAIT,
                tasks=worker.tasks or None,
                lease_ttl=self.lease_ttl,
                lookahead=self.lookahead,
            )
            try:
                jobs = await self.service.claim(claim)
            except ShoalError as error:  # the store failed or closed: end the session
                self._send(Message(error=error_message(error)))
                self._send(None)
                return
            if jobs and self.draining:
                # the drain came while this claim waited: give the jobs straight back
                await self.service.release([j.lease for j in jobs])
                continue
            if jobs:
                await self._assign(jobs)

    async def _assign(self, jobs: list[Job]) -> None:
        """Send claimed jobs in as many messages as fit the stream's limit (a message over it
        ended the stream, its leases went back counting an attempt, the next stream alike).
        """
        messages, too_large = codec.assignments_within(jobs, self.max_message_bytes)
        held = self.held
        for job in jobs:
            held[job.id] = job.lease_token or ""
        for message, size in messages:
            self._send(message, size)
        self.credits -= len(jobs) - len(too_large)
        for job, size in too_large:  # no stream can carry it: it fails, the credit stays
            del held[job.id]
            error = codec.too_large_error(size, self.max_message_bytes)
            extra = {"event": "grpc.stream.too_large", "job_id": job.id}
            logger.warning("job %s not sent: %s", job.id, error.message, extra=extra)
            with contextlib.suppress(ShoalError):  # else its lease ends with the stream
                await self._own.fail(job.lease, error)

    def on_event(self, event: Event) -> None:
        """An event about this worker: a cancellation, a drain or a kick."""
        if event.kind == "job.cancel_requested":
            if event.job_id in self.held:
                self._send(Message(cancel=workers_pb2.Cancel(job_ids=[event.job_id])))
        elif event.kind == "worker.drain":
            self.drain("drain requested")
        elif event.kind == "worker.kick":
            # kick_worker releases the leases and forgets the worker; a claim that returns
            # from now on gives its jobs straight back (see `_dispatch`)
            self.gone = self.kicked = self.draining = True
            self._credit.set()
            self._send(Message(goodbye=workers_pb2.Goodbye(reason="kicked")))
            self._send(None)


def check_hello(message: object) -> workers_pb2.Hello:
    """The hello a stream must open with, or the error to end the stream with."""
    if isinstance(message, Malformed):
        raise message.error()
    if not isinstance(message, workers_pb2.WorkerMessage) or message.WhichOneof("kind") != "hello":
        raise InvalidArgument("hello", "the first message of a stream must be a hello")
    return message.hello


async def first_message(requests: AsyncIterator[Any]) -> Any:
    """The first message of a stream, or None if the worker hung up at once."""
    with contextlib.suppress(StopAsyncIteration):
        return await anext(requests)
    return None
