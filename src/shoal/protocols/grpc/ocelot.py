"""Ocelot compatibility: `ocelot.OcelotWorker` with the seed's names, mapped onto `QueueService`.

An Ocelot producer dials its workers; pointed at shoal, it hands each job instance to shoal,
which runs it on any shoal worker and reports the outcome the Ocelot way. An instance becomes a
job of the queue `ocelot` whose task is the instance's `type` parameter (Ocelot's handler type;
`ocelot` without one) and whose payload is JSON `{"job_id", "instance_id", "ctime", "params"}`;
the instance id is its idempotency key, so a resent instance runs once.

`Execute` enqueues and echoes the request at once, as the seed does. `ExecuteStream` enqueues
every instance it receives and streams each back when its job finishes, with `Success` set
(true only for a succeeded job) and `Mtime` the finish time in Unix nanoseconds; an instance
that cannot be enqueued comes back at once with `Success` false.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from shoal.core.errors import ShoalError
from shoal.core.model import DEFAULT_NAMESPACE, JobState
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc._auth import Callers, CallerService
from shoal.protocols.grpc._codec import MAX_WAIT
from shoal.protocols.grpc._decoding import Malformed
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.ocelot import ocelot_pb2, ocelot_pb2_grpc

__all__ = ["QUEUE", "OcelotServicer"]

logger = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
Instance = ocelot_pb2.JobInstanceMsg

#: The queue Ocelot's job instances go to.
QUEUE = "ocelot"


def _request(instance: Instance) -> EnqueueRequest:
    body = {
        "job_id": instance.JobID,
        "instance_id": instance.InstanceID,
        "ctime": instance.Ctime,
        "params": dict(instance.Params),
    }
    return EnqueueRequest(
        task=instance.Params.get("type") or "ocelot",
        queue=QUEUE,
        payload=json.dumps(body).encode(),
        idempotency_key=f"ocelot:{instance.InstanceID}" if instance.InstanceID else None,
    )


class OcelotServicer(ocelot_pb2_grpc.OcelotWorkerServicer):
    """Job instances in, outcomes out; every call goes to `QueueService`."""

    def __init__(self, callers: Callers) -> None:
        self._callers = callers

    @property
    def _service(self) -> CallerService:
        # the service as the principal of the call being served may use it
        return self._callers.service()

    @mapped
    async def Execute(self, request: Instance, context: Context) -> Instance:
        """Enqueue the instance and echo it unchanged."""
        await self._service.enqueue(_request(request))
        return request

    async def ExecuteStream(
        self, request_iterator: AsyncIterator[Any], context: Context
    ) -> AsyncIterator[Instance]:
        """Enqueue every instance; stream each back when its job finishes."""
        done: asyncio.Queue[Instance | None] = asyncio.Queue()
        waiters: set[asyncio.Task[None]] = set()

        async def read() -> None:
            async for message in request_iterator:
                if isinstance(message, Malformed):
                    continue  # Ocelot has no way to name a message it could not parse
                waiter = asyncio.create_task(self._outcome(message, done))
                waiters.add(waiter)
                waiter.add_done_callback(waiters.discard)
            await asyncio.gather(*waiters)
            done.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (instance := await done.get()) is not None:
                yield instance
        finally:
            reader.cancel()
            for waiter in list(waiters):
                waiter.cancel()
            await asyncio.gather(reader, *waiters, return_exceptions=True)

    async def _outcome(self, instance: Instance, done: asyncio.Queue[Instance | None]) -> None:
        reply = Instance()
        reply.CopyFrom(instance)
        try:
            job = (await self._service.enqueue(_request(instance))).job
            while not job.is_terminal:
                job = await self._service.wait_for(DEFAULT_NAMESPACE, job.id, MAX_WAIT)
        except ShoalError as error:
            logger.warning(
                "Ocelot instance %s not run: %s",
                instance.InstanceID,
                error.message,
                extra={"event": "ocelot.refused"},
            )
            reply.Success = False
        else:
            reply.Success = job.state is JobState.SUCCEEDED
            reply.Mtime = int((job.finished_at or self._service.clock.now()) * 1e9)
        done.put_nowait(reply)
