"""The client side of one worker stream (`WorkerService.Connect`), on HTTP/2 or the native
framing: the hello and welcome (resuming a lost session), credits and the assignments they
allow, heartbeats, outcomes and their acks, cancellations and the drain.

`GrpcTransport.connect_worker` opens it; the transport's unary and enqueue calls live in
`shoal.sdk._grpc`, the session's state and its reading of the stream in
`shoal.sdk._grpc_session_base`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.core.errors import ShoalError, Unavailable
from shoal.core.model import Job, JobError, LeaseRef
from shoal.core.ports import HeartbeatResult
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2
from shoal.sdk import _grpc_codec as codec
from shoal.sdk._grpc_outcomes import result_bound
from shoal.sdk._grpc_session_base import SessionBase
from shoal.sdk._transport import LOOKAHEAD, LostSession

__all__ = ["CONNECT_TIMEOUT", "GrpcSession"]

logger = logging.getLogger(__name__)

#: Seconds to wait for the server: for the transport's channel, and for a session's welcome.
CONNECT_TIMEOUT = 10.0
#: Seconds a new worker stream waits for its channel to connect (see `GrpcSession.open`).
READY_WAIT = 2.0
#: On close, jobs assigned meanwhile are given back for at most this long...
_CLOSE_WAIT = 1.0
#: ...and until no assignment came for this long.
_QUIET = 0.05


class GrpcSession(SessionBase):
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
            hello.held.extend(map(codec.lease_to_pb, _within(lost)))
        try:
            # The stream waits for the channel to be ready (`wait_for_ready`): just after a
            # server restart the channel is still between reconnect attempts, and a call
            # failed at once. Bounded, so that a server that is not there is reported soon.
            async with asyncio.timeout(READY_WAIT):
                await self._send(hello=hello)
        except TimeoutError:
            self._call.cancel()
            raise Unavailable("the shoal server is not reachable") from None
        try:
            # bounded: a server restarting may take the stream and never answer, and the
            # worker's reconnect loop must get the failure to try again
            first = await asyncio.wait_for(self._call.read(), CONNECT_TIMEOUT)
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
        """Bound outcomes and credits by the server's limits, where it says them (a configured
        `server.max_message_bytes` below the default: an outcome over them ends the stream; a
        `limits.max_batch` other than the default: a grant over it is refused).
        """
        if welcome.max_credits:
            self._credit_cap = self._max_batch = welcome.max_credits
        if welcome.max_message_bytes:
            self._outcomes.max_message = min(welcome.max_message_bytes, MAX_MESSAGE_BYTES)
        self.max_outcome_bytes = result_bound(self._outcomes.max_message)

    @property
    def max_held(self) -> int:
        """The server's `limits.max_batch`, as its Welcome says it, else the default (not the
        credit cap a refusal lowered: that one guesses).
        """
        return self._max_batch

    async def claim(self, queues: Sequence[str], limit: int, wait: float) -> list[Job]:
        """Grant credits for `limit` free slots and the prefetch, and take up to `limit` jobs
        assigned, waiting up to `wait` seconds for the first (the queues were named in the
        hello).
        """
        if self._closed is not None:
            raise self._closed
        if self.draining:
            return []
        grant = min(
            limit + self.prefetch - self._outstanding - len(self._assigned),
            self._credit_cap - self._outstanding,
        )
        # Credits go back in batches, as an HTTP/2 window does: at once when the server holds
        # none (nothing could be assigned meanwhile), else when a quarter of the slots can be
        # granted together. A credit per finished job cost a message each way per job.
        held = self._outstanding + len(self._assigned)
        batch = min(self._worker.concurrency, self._credit_cap) // 4
        refusals = self._refusals
        if grant > 0 and (held == 0 or grant >= max(1, batch)):
            self._outstanding += grant
            self._last_grant = grant
            await self._send(credit=workers_pb2.Credit(credits=grant))
        idle = not self._assigned and self._closed is None and not self.draining
        if idle and wait > 0 and self._refusals == refusals:
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
        unstarted = [job.lease for job in self._assigned]
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

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        """Report success and wait for the server's ack."""
        await self._outcomes.complete(lease, result)

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None) -> None:
        """Report a failed attempt and wait for the server's ack."""
        await self._outcomes.fail(lease, error, retry_delay)

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
                await asyncio.wait_for(self._reader, CONNECT_TIMEOUT)
            except TimeoutError:
                self._call.cancel()

    async def _give_back_unstarted(self) -> None:
        # Credits cannot be taken back: while some are unused, the server may still assign
        # jobs (even the ones just released). Release what arrives until it goes quiet or the
        # credits are used up; whatever comes later the server releases when the stream ends.
        self.draining = True
        deadline = time.monotonic() + _CLOSE_WAIT
        while True:
            unstarted = [job.lease for job in self._assigned]
            self._assigned.clear()
            if unstarted:
                await self.release(unstarted)
            if self._closed is not None:
                return
            if self._outstanding <= 0 or time.monotonic() >= deadline:
                return
            if not await self._wait_for_arrival(_QUIET):
                return


def _within(lost: LostSession) -> tuple[LeaseRef, ...]:
    """The held leases a hello may name: the server refuses more than its `max_batch` whole.
    Those left out go back to their queue when the server resumes (their jobs run again; the
    worker's outcomes for them are `LeaseLost`), which beats a worker that never reconnects.
    """
    if lost.max_held is None or len(lost.held) <= lost.max_held:
        return lost.held
    logger.warning(
        "naming %d of the %d leases held; the server takes at most %d",
        lost.max_held,
        len(lost.held),
        lost.max_held,
        extra={"event": "worker.resume_capped"},
    )
    return lost.held[: lost.max_held]
