"""Distributed mode: the `shoal.v1` gRPC API of a shoal server (`grpc://host:port`), on
HTTP/2 or on the native framing (`shoal://host:port`, see `shoal.sdk._native`).

Producer calls are unary. A worker holds one `WorkerService.Connect` stream: it grants a
credit per free slot, the server pushes assignments up to the credits, heartbeats renew every
lease at once, outcomes come back as acks (or errors naming the job), and cancellations are
pushed the moment they are asked for. When the stream closes the server releases the leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.core.errors import ShoalError, Unavailable, error_from_code
from shoal.core.events import Event
from shoal.core.model import Job, JobError, LeaseRef, QueueStats, WorkerInfo
from shoal.core.ports import Enqueued, HeartbeatResult
from shoal.core.schedules import ScheduleApi
from shoal.core.validation import MAX_MESSAGE_BYTES, EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from shoal.sdk import _grpc_codec as codec
from shoal.sdk._credentials import Credentials, open_channel, parse_grpc_url
from shoal.sdk._grpc_enqueue import EnqueueStream
from shoal.sdk._transport import (
    LOOKAHEAD,
    MAX_ERROR_BYTES,
    MAX_PREFETCH,
    CancelListener,
    LostSession,
)

__all__ = ["GrpcSession", "GrpcTransport"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds to wait for the server when the transport opens.
_CONNECT_TIMEOUT = 10.0
#: On close, jobs assigned meanwhile are given back for at most this long...
_CLOSE_WAIT = 1.0
#: ...and until no assignment came for this long.
_QUIET = 0.05
#: Room kept in a message for what travels with a result or an error (ids, token, framing):
#: a message over the server's limit ends the whole worker stream.
_ENVELOPE = 64 * 1024


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except grpc.aio.AioRpcError as error:
        raise codec.error_from_rpc(error) from None


class GrpcTransport:
    """A client of a shoal server over gRPC: `host:port`, `grpc://host:port` or
    `grpcs://host:port` (TLS); or over the native framing: `shoal://host:port`, `shoals://`.
    """

    def __init__(self, target: str, credentials: Credentials | None = None) -> None:
        """Remember where to connect; `grpcs://` for TLS. `credentials` (a token, a CA, a
        client certificate) come from `$SHOAL_TOKEN`, `$SHOAL_CA`, `$SHOAL_CERT` and
        `$SHOAL_KEY` when None. Nothing connects before `open()`.
        """
        self.url = target if "://" in target else f"grpc://{target}"
        self.address = parse_grpc_url(self.url)[1]
        self.credentials = credentials
        self._channel: grpc.aio.Channel | None = None

    @property
    def channel(self) -> grpc.aio.Channel:
        """The open channel."""
        if self._channel is None:
            raise Unavailable("the gRPC transport is not open")
        return self._channel

    async def open(self) -> None:
        """Dial the server and wait until the channel is ready."""
        channel = open_channel(self.url, self.credentials)
        try:
            await asyncio.wait_for(channel.channel_ready(), _CONNECT_TIMEOUT)
        except TimeoutError:
            await channel.close(None)
            raise Unavailable(f"no shoal server answers at {self.address}") from None
        self._channel = channel
        self._jobs: Any = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        self._queues: Any = queues_pb2_grpc.QueueServiceStub(channel)  # type: ignore[no-untyped-call]
        self._workers: Any = workers_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        self._events: Any = events_pb2_grpc.EventServiceStub(channel)  # type: ignore[no-untyped-call]
        self._enqueues = EnqueueStream(self._jobs)

    async def close(self) -> None:
        """Close the channel (open streams end)."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await self._enqueues.close()
            await channel.close(None)

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Store jobs in one transaction (on the transport's enqueue stream)."""
        return await self._enqueues.enqueue(requests)

    async def get(self, namespace: str, job_id: str) -> Job:
        """The job."""
        request = jobs_pb2.GetJobRequest(namespace=namespace, id=job_id)
        return codec.job_from_pb(await _call(self._jobs.GetJob(request)))

    async def wait(self, namespace: str, job_id: str, timeout: float) -> Job:
        """The job once finished, or after `timeout` seconds (a long poll)."""
        request = jobs_pb2.WaitForJobRequest(namespace=namespace, id=job_id, timeout=timeout)
        return codec.job_from_pb((await _call(self._jobs.WaitForJob(request))).job)

    async def cancel(self, namespace: str, job_id: str) -> Job:
        """Cancel the job."""
        request = jobs_pb2.CancelJobRequest(namespace=namespace, id=job_id)
        return codec.job_from_pb(await _call(self._jobs.CancelJob(request)))

    async def stats(self, namespace: str, queue: str | None) -> QueueStats:
        """Counts of jobs by state."""
        request = queues_pb2.GetQueueStatsRequest(namespace=namespace, queue=queue or "")
        return codec.stats_from_pb(await _call(self._queues.GetQueueStats(request)))

    async def events(self, namespace: str) -> AsyncIterator[Event]:
        """The server's events for this namespace, as they happen."""
        call = self._events.Subscribe(events_pb2.SubscribeRequest(namespace=namespace))
        try:
            async for message in call:
                yield codec.event_from_pb(message)
        except grpc.aio.AioRpcError as error:
            raise codec.error_from_rpc(error) from None
        finally:
            call.cancel()

    async def connect_worker(
        self,
        worker: WorkerInfo,
        on_cancel: CancelListener,
        *,
        prefetch: int = 0,
        lost: LostSession | None = None,
    ) -> GrpcSession:
        """Open a worker stream (after `lost`, if it replaces one)."""
        session = GrpcSession(self._workers.Connect(), worker, on_cancel, prefetch)
        await session.open(lost)
        return session

    def schedules(self) -> ScheduleApi:
        """The server's schedules (`shoal.v1.ScheduleService`)."""
        from shoal.sdk._admin_grpc import GrpcSchedules  # it imports this module

        return GrpcSchedules(self)


class GrpcSession:
    """The client side of one worker stream.

    It grants the server credits for the worker's free slots plus the worker's `prefetch`
    (0 unless asked, at most `MAX_PREFETCH`): assignments then travel while the worker's jobs
    run, so that a slot that frees takes its next job at once instead of after a round trip.
    It is off by default because a prefetched job waits behind the running ones while another
    worker may be idle (Celery's prefetch complaint): worth it for many short jobs at low
    concurrency, not for long ones. Prefetched jobs are leased
    to this worker: heartbeats renew them, a cancellation gives them back (they end cancelled),
    closing the session gives them back, and if the worker dies the server releases them with
    the stream.
    """

    def __init__(
        self, call: Any, worker: WorkerInfo, on_cancel: CancelListener, prefetch: int = 0
    ) -> None:
        self._call = call
        self._worker = worker
        self._on_cancel = on_cancel
        self.heartbeat_interval = 2.0
        #: The largest message this session sends: the channel's, or the server's if smaller.
        self._max_message = MAX_MESSAGE_BYTES
        #: That, less the room kept for an error and framing (`_result_bound`).
        self.max_outcome_bytes: int | None = _result_bound(MAX_MESSAGE_BYTES)
        self.worker_id = ""
        self.session_secret = ""
        #: Jobs assigned and not yet taken (the prefetch).
        self._assigned: deque[Job] = deque()
        #: Resolved when a job is assigned, the stream ends or drains: one per claim waiting
        #: (a started worker's run_until_idle claims beside its claim loop).
        self._arrivals: set[asyncio.Future[bool]] = set()
        self.prefetch = min(max(prefetch, 0), MAX_PREFETCH)
        #: Credits granted that the server has not used yet.
        self._outstanding = 0
        self.draining = False
        self._closed: ShoalError | None = None
        self._heartbeats: deque[asyncio.Future[HeartbeatResult]] = deque()
        self._outcomes: dict[str, asyncio.Future[None]] = {}
        self._batch: list[workers_pb2.Completion | workers_pb2.Failure] = []
        #: About the bytes of `_batch` (results and error texts): only a batch near the
        #: message limit is measured exactly and split (`_within_limit`).
        self._batch_bytes = 0
        self._flushes: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    async def _send(self, **kind: Any) -> None:
        if self._closed is not None:
            raise self._closed
        async with self._write_lock:
            try:
                await self._call.write(workers_pb2.WorkerMessage(**kind))
            except grpc.aio.AioRpcError as error:
                raise codec.error_from_rpc(error) from None
            except asyncio.InvalidStateError:
                raise Unavailable("the worker stream is closed") from None

    async def open(self, lost: LostSession | None = None) -> None:
        """Say hello (naming the session this one replaces) and read the welcome."""
        worker = self._worker
        hello = workers_pb2.Hello(
            namespace=worker.namespace,
            queues=worker.queues,
            tasks=worker.tasks,
            concurrency=worker.concurrency,
            language="python",
            host=worker.host,
            pid=worker.pid,
            lookahead=LOOKAHEAD,
        )
        if lost is not None:
            hello.previous_session_secret = lost.secret
            hello.held.extend(map(codec.lease_to_pb, lost.held))
        await self._send(hello=hello)
        try:
            # bounded: a server restarting may take the stream and never answer, and the
            # worker's reconnect loop must get the failure to try again
            first = await asyncio.wait_for(self._call.read(), _CONNECT_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise codec.error_from_rpc(error) from None
        except TimeoutError:
            self._call.cancel()
            raise Unavailable("the server did not welcome the worker in time") from None
        if first is EOF or first.WhichOneof("kind") != "welcome":
            raise Unavailable("the server did not welcome the worker")
        self.worker_id = first.welcome.worker_id
        self.session_secret = first.welcome.session_secret
        self.heartbeat_interval = first.welcome.heartbeat_interval or self.heartbeat_interval
        self._bound_by(first.welcome)
        self._reader = asyncio.create_task(self._read())

    def _bound_by(self, welcome: workers_pb2.Welcome) -> None:
        """Bound outcomes by the server's limits, where it says them (a configured
        `server.max_message_bytes` below the default): an outcome over them ends the stream.
        """
        if welcome.max_message_bytes:
            self._max_message = min(welcome.max_message_bytes, MAX_MESSAGE_BYTES)
        self.max_outcome_bytes = _result_bound(self._max_message)

    async def _read(self) -> None:
        reason: ShoalError = Unavailable("the server closed the worker stream")
        try:
            while (message := await self._call.read()) is not EOF:
                self._dispatch(message)
        except grpc.aio.AioRpcError as error:
            # whatever ended it, this session is gone: the worker must open a new one
            reason = Unavailable(f"the worker stream broke: {codec.error_from_rpc(error)}")
        except asyncio.CancelledError:
            # grpc reports a call cancelled under us (the channel closed while we read) as a
            # cancellation; that is the stream's end. A cancellation of this task itself is not.
            if not self._call.cancelled():
                raise
            reason = Unavailable("the worker stream was cancelled")
        finally:
            self._closed = reason
            self._assigned.clear()  # the server released their leases with the stream
            self._wake()  # a claim waiting for work
            pending: list[asyncio.Future[Any]] = [*self._heartbeats, *self._outcomes.values()]
            for future in pending:
                if not future.done():
                    future.set_exception(reason)
            self._heartbeats.clear()
            self._outcomes.clear()

    def _wake(self) -> None:
        for arrival in self._arrivals:
            _settle(arrival, True)

    async def _wait_for_arrival(self, timeout: float) -> bool:
        """Wait until a job is assigned (or the stream ends or drains); False on timeout."""
        # A timer rather than asyncio.wait_for: the claim resumes in the loop iteration after
        # the assignment is read, without wait_for's extra hop.
        loop = asyncio.get_running_loop()
        arrival: asyncio.Future[bool] = loop.create_future()
        self._arrivals.add(arrival)
        timer = loop.call_later(timeout, _settle, arrival, False)
        try:
            return await arrival
        finally:
            timer.cancel()
            self._arrivals.discard(arrival)

    def _dispatch(self, message: workers_pb2.ServerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "assignments":
            items = message.assignments.assignments
            self._outstanding = max(self._outstanding - len(items), 0)
            job_from_pb = codec.job_from_pb
            self._assigned.extend(job_from_pb(item.job, item.token) for item in items)
            self._wake()
        elif kind == "heartbeat_ack":
            ack = message.heartbeat_ack
            result = HeartbeatResult(
                tuple(ack.renewed), tuple(ack.lost), tuple(ack.cancel_requested)
            )
            self._drop_unstarted(result.lost, result.cancel_requested)
            if self._heartbeats:
                _settle(self._heartbeats.popleft(), result)
        elif kind == "acks":
            for ack_item in message.acks.acks:
                _settle(self._outcomes.pop(ack_item.job_id, None), None)
        elif kind == "cancel":
            self._drop_unstarted((), message.cancel.job_ids)
            for job_id in message.cancel.job_ids:
                self._on_cancel(job_id)
        elif kind == "error":
            self._refused(message.error)
        elif kind == "drain":
            self.draining = True
            self._wake()
            logger.info("the server asks this worker to drain", extra={"event": "worker.drain"})
        elif kind == "goodbye":
            logger.warning("the server ended this worker's session: %s", message.goodbye.reason)

    def _drop_unstarted(self, lost: Sequence[str], cancelled: Sequence[str]) -> None:
        """Forget prefetched jobs whose lease is gone; give back the ones cancelled (unstarted,
        they end cancelled at once rather than when a slot frees).
        """
        if not self._assigned or not (lost or cancelled):
            return
        gone, back = set(lost), set(cancelled)
        kept: deque[Job] = deque()
        leases: list[LeaseRef] = []
        for job in self._assigned:
            if job.id in back:
                leases.append(LeaseRef(job.id, job.lease_token or ""))
            elif job.id not in gone:
                kept.append(job)
        self._assigned = kept
        if leases:
            task = asyncio.ensure_future(self.release(leases))
            self._flushes.add(task)
            task.add_done_callback(self._released)

    def _released(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("giving back cancelled jobs failed: %s", task.exception())

    def _refused(self, error: Any) -> None:
        failure = error_from_code(error.code, error.message, error.field or None)
        future = self._outcomes.pop(error.job_id, None) if error.job_id else None
        if future is not None:
            future.set_exception(failure)
        else:
            logger.warning(
                "the server refused a worker message: %s",
                failure.message,
                extra={"event": "worker.refused", "job_id": error.job_id or None},
            )

    async def claim(self, queues: Sequence[str], limit: int, wait: float) -> list[Job]:
        """Grant credits for `limit` free slots and the prefetch, and take up to `limit` jobs
        assigned, waiting up to `wait` seconds for the first (the queues were named in the
        hello).
        """
        if self._closed is not None:
            raise self._closed
        if self.draining:
            return []
        grant = limit + self.prefetch - self._outstanding - len(self._assigned)
        # Credits go back in batches, as an HTTP/2 window does: at once when the server holds
        # none (nothing could be assigned meanwhile), else when a quarter of the slots can be
        # granted together. A credit per finished job cost a message each way per job.
        held = self._outstanding + len(self._assigned)
        if grant > 0 and (held == 0 or grant >= max(1, self._worker.concurrency // 4)):
            self._outstanding += grant
            await self._send(credit=workers_pb2.Credit(credits=grant))
        if not self._assigned and wait > 0 and self._closed is None and not self.draining:
            await self._wait_for_arrival(wait)
        if self.draining:  # take nothing more; the prefetch is given back on close
            return []
        assigned = self._assigned
        jobs = [assigned.popleft() for _ in range(min(limit, len(assigned)))]
        if not jobs and self._closed is not None:
            raise self._closed
        return jobs

    async def heartbeat(self, leases: Sequence[LeaseRef]) -> HeartbeatResult:
        """Renew these leases, and those of the jobs prefetched."""
        future: asyncio.Future[HeartbeatResult] = asyncio.get_running_loop().create_future()
        self._heartbeats.append(future)
        unstarted = [LeaseRef(job.id, job.lease_token or "") for job in self._assigned]
        try:
            message = workers_pb2.Heartbeat(leases=map(codec.lease_to_pb, [*leases, *unstarted]))
            await self._send(heartbeat=message)
        except BaseException:
            with contextlib.suppress(ValueError):
                self._heartbeats.remove(future)
            future.cancel()
            raise
        try:
            return await future
        except asyncio.CancelledError:  # given up (a timeout): a late ack answers the next one
            with contextlib.suppress(ValueError):
                self._heartbeats.remove(future)
            raise

    async def _outcome(
        self, job_id: str, item: workers_pb2.Completion | workers_pb2.Failure, size: int
    ) -> None:
        # Outcomes finished in the same loop tick travel in one message (the protocol batches).
        # One outcome per job is in flight: an answer names the job, not the lease, and the
        # server stores batches concurrently, so it may answer two outcomes of one job (a lost
        # attempt's and the new attempt's) in either order. The second waits for the first's.
        while (earlier := self._outcomes.get(job_id)) is not None:
            await asyncio.wait({earlier})  # a cancelled one: its stand-in comes next turn
        if self._closed is not None:
            raise self._closed
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._outcomes[job_id] = future
        self._batch.append(item)
        self._batch_bytes += size + _ITEM_BYTES
        if len(self._batch) == 1:
            loop.call_soon(self._flush_soon)
        try:
            await future
        except asyncio.CancelledError:
            # The caller gave up, the outcome is still in flight: a stand-in takes the answer,
            # which must not reach a later outcome of this job. (Not a shield: that costs every
            # outcome two more callbacks, 15-20% of a drain.)
            if self._outcomes.get(job_id) is future:
                stand_in: asyncio.Future[None] = loop.create_future()
                stand_in.add_done_callback(_retrieve)
                self._outcomes[job_id] = stand_in
            raise

    def _flush_soon(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._batch = self._batch, []
        limit = self._max_message - _ENVELOPE
        size, self._batch_bytes = self._batch_bytes, 0
        for part in [batch] if size <= limit // 2 else _within_limit(batch, limit):
            completed = [item for item in part if isinstance(item, workers_pb2.Completion)]
            failed = [item for item in part if isinstance(item, workers_pb2.Failure)]
            try:
                await self._send(outcomes=workers_pb2.Outcomes(completed=completed, failed=failed))
            except ShoalError as error:
                for item in part:
                    future = self._outcomes.pop(item.job_id, None)
                    if future is not None and not future.done():
                        future.set_exception(error)

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        """Report success and wait for the server's ack."""
        completion = workers_pb2.Completion(job_id=lease.job_id, token=lease.token)
        if result is not None:
            completion.result = result
        await self._outcome(lease.job_id, completion, len(result or b""))

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None) -> None:
        """Report a failed attempt and wait for the server's ack."""
        failure = workers_pb2.Failure(
            job_id=lease.job_id, token=lease.token, error=codec.error_to_pb(error)
        )
        if retry_delay is not None:
            failure.retry_delay = retry_delay
        texts = (error.type, error.message, error.traceback)
        size = sum(len(text.encode(errors="replace")) for text in texts)
        await self._outcome(lease.job_id, failure, size)

    async def release(self, leases: Sequence[LeaseRef]) -> None:
        """Give jobs back unfinished."""
        await self._send(release=workers_pb2.Release(leases=map(codec.lease_to_pb, leases)))

    async def progress(self, lease: LeaseRef, value: float) -> None:
        """Record progress."""
        message = workers_pb2.Progress(job_id=lease.job_id, token=lease.token, progress=value)
        await self._send(progress=message)

    async def close(self) -> None:
        """Give back jobs assigned but never taken, then end the stream."""
        with contextlib.suppress(ShoalError):
            await self._give_back_unstarted()
            async with self._write_lock:
                await self._call.done_writing()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, _CONNECT_TIMEOUT)
            except TimeoutError:
                self._call.cancel()

    async def _give_back_unstarted(self) -> None:
        # Credits cannot be taken back: while some are unused, the server may still assign
        # jobs (even the ones just released). Release what arrives until it goes quiet or the
        # credits are used up; whatever comes later the server releases when the stream ends.
        self.draining = True
        deadline = time.monotonic() + _CLOSE_WAIT
        while True:
            unstarted = [LeaseRef(job.id, job.lease_token or "") for job in self._assigned]
            self._assigned.clear()
            if unstarted:
                await self.release(unstarted)
            if self._closed is not None:
                return
            if self._outstanding <= 0 or time.monotonic() >= deadline:
                return
            if not await self._wait_for_arrival(_QUIET):
                return


#: Bytes an outcome takes besides its result or error text (ids, token, tags), at most.
_ITEM_BYTES = 256


def _within_limit(
    batch: list[workers_pb2.Completion | workers_pb2.Failure], limit: int
) -> list[list[workers_pb2.Completion | workers_pb2.Failure]]:
    """`batch` in order, in parts of at most `limit` bytes each (an item alone may exceed it):
    a few large results finished together must not add up to one message the server refuses.
    """
    parts: list[list[workers_pb2.Completion | workers_pb2.Failure]] = [[]]
    size = 0
    for item in batch:
        item_size = item.ByteSize()
        if parts[-1] and size + item_size > limit:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += item_size
    return parts


def _result_bound(max_message: int) -> int:
    """The most a result and its job's payload may take together, for a server whose messages
    are bounded by `max_message`: it sends the job back with both, and its last error.
    """
    return max(max_message - MAX_ERROR_BYTES - _ENVELOPE, 0)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[T] | None, value: T) -> None:
    if future is not None and not future.done():
        future.set_result(value)
