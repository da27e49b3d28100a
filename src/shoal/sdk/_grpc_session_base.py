"""What every part of `GrpcSession` shares: its state, its writes to the worker stream, and
the reading of what the server sends on it (assignments, heartbeat acks, outcome acks,
cancellations, refusals and the drain).

`GrpcSession` (`shoal.sdk._grpc_session`) is this base with the worker's side on top: the
hello and welcome, claims and their credits, heartbeats, outcomes and the close. Import it
from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.core.errors import ShoalError, Unavailable, error_from_code
from shoal.core.model import Job, LeaseRef, WorkerInfo
from shoal.core.ports import HeartbeatResult
from shoal.core.validation import MAX_MESSAGE_BYTES, Limits
from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2
from shoal.sdk import _grpc_codec as codec
from shoal.sdk._grpc_outcomes import OutcomeBatches, result_bound, settle
from shoal.sdk._transport import MAX_PREFETCH, CancelListener

__all__ = ["SessionBase"]

logger = logging.getLogger(__name__)

#: Credits a session may hold at once: the server's default `limits.max_batch`.
MAX_CREDITS = Limits().max_batch


class SessionBase:
    """The state of a `GrpcSession`, and what the server sends it."""

    if TYPE_CHECKING:  # provided by GrpcSession; declared here for the type checker only

        async def release(self, leases: Sequence[LeaseRef]) -> None: ...

    def __init__(
        self, call: Any, worker: WorkerInfo, on_cancel: CancelListener, prefetch: int = 0
    ) -> None:
        self._call = call
        self._worker = worker
        self._on_cancel = on_cancel
        self.heartbeat_interval = 2.0
        #: The largest message this session sends (`OutcomeBatches.max_message`), less the
        #: room kept for an error and framing (`result_bound`).
        self.max_outcome_bytes: int | None = result_bound(MAX_MESSAGE_BYTES)
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
        #: The most credits held at once: the server refuses a grant above its
        #: `limits.max_batch` whole. Its Welcome says it (else the default applies), and a
        #: refusal lowers it (a server that does not say, configured lower).
        self._credit_cap = self._max_batch = MAX_CREDITS
        self._last_grant = 0
        #: Grants refused so far: a claim whose grant was refused while it was being sent
        #: grants again rather than wait for work (the refusal found no claim to wake).
        self._refusals = 0
        self.draining = False
        self._closed: ShoalError | None = None
        self._heartbeats: deque[asyncio.Future[HeartbeatResult]] = deque()
        self._flushes: set[asyncio.Task[None]] = set()
        self._outcomes = OutcomeBatches(self._send_outcomes, self._flushes)
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

    async def _send_outcomes(self, outcomes: workers_pb2.Outcomes) -> None:
        await self._send(outcomes=outcomes)

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
            for future in self._heartbeats:
                if not future.done():
                    future.set_exception(reason)
            self._heartbeats.clear()
            self._outcomes.end(reason)

    def _wake(self) -> None:
        for arrival in self._arrivals:
            settle(arrival, True)

    async def _wait_for_arrival(self, timeout: float) -> bool:
        """Wait until a job is assigned (or the stream ends or drains); False on timeout."""
        # A timer rather than asyncio.wait_for: the claim resumes in the loop iteration after
        # the assignment is read, without wait_for's extra hop.
        loop = asyncio.get_running_loop()
        arrival: asyncio.Future[bool] = loop.create_future()
        self._arrivals.add(arrival)
        timer = loop.call_later(timeout, settle, arrival, False)
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
                settle(self._heartbeats.popleft(), result)
        elif kind == "acks":
            for ack_item in message.acks.acks:
                self._outcomes.acked(ack_item.job_id)
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
                leases.append(job.lease)
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
        if not error.job_id and error.field == "credits":
            self._credits_refused(failure)
        elif not (error.job_id and self._outcomes.refused(error.job_id, failure)):
            logger.warning(
                "the server refused a worker message: %s",
                failure.message,
                extra={"event": "worker.refused", "job_id": error.job_id or None},
            )

    def _credits_refused(self, failure: ShoalError) -> None:
        """The server refused a grant whole: counted, it was credits the server never had, and
        a count at the cap grants no more (the worker stayed idle for ever). Take it back, and
        hold at most half as many from now on (a server whose Welcome did not say its limit).
        """
        # Grants are not acked, so the one refused is taken to be the last one sent: it is
        # exact when one grant is in flight, as when the first (all the free slots) is refused.
        self._credit_cap = max(min(self._credit_cap, self._outstanding) // 2, 1)
        self._outstanding = max(self._outstanding - self._last_grant, 0)
        self._last_grant = 0
        self._refusals += 1
        self._wake()  # a claim waiting for work grants again
        logger.warning(
            "the server refused a credit grant (%s); holding at most %d credits",
            failure.message,
            self._credit_cap,
            extra={"event": "worker.credits_refused"},
        )
