"""Distributed mode: the `shoal.v1` gRPC API of a shoal server (`grpc://host:port`), on
HTTP/2 or on the native framing (`shoal://host:port`, see `shoal.sdk._native`).

Producer calls are unary (enqueues share a stream, `shoal.sdk._grpc_enqueue`). A worker holds
one `WorkerService.Connect` stream (`shoal.sdk._grpc_session`): it grants a credit per free
slot, the server pushes assignments up to the credits, heartbeats renew every lease at once,
outcomes come back as acks (or errors naming the job), and cancellations are pushed the moment
they are asked for. When the stream closes the server releases the leases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from shoal.core.errors import Unavailable
from shoal.core.events import Event
from shoal.core.model import Job, QueueStats, WorkerInfo
from shoal.core.ports import Enqueued
from shoal.core.schedules import ScheduleApi
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    workers_pb2_grpc,
)
from shoal.sdk import _grpc_codec as codec
from shoal.sdk._credentials import Credentials, open_channel, parse_grpc_url
from shoal.sdk._grpc_enqueue import EnqueueStream
from shoal.sdk._grpc_session import CONNECT_TIMEOUT, GrpcSession
from shoal.sdk._transport import CancelListener, LostSession

__all__ = ["GrpcSession", "GrpcTransport"]

T = TypeVar("T")


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
            await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
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
        call = self._workers.Connect(wait_for_ready=True)  # see GrpcSession.open
        session = GrpcSession(call, worker, on_cancel, prefetch)
        await session.open(lost)
        return session

    def schedules(self) -> ScheduleApi:
        """The server's schedules (`shoal.v1.ScheduleService`)."""
        from shoal.sdk._admin_grpc import GrpcSchedules  # it imports this module

        return GrpcSchedules(self)
