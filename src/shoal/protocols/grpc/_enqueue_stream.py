"""`JobService.EnqueueStream`: enqueues over one long-lived bidirectional stream.

A unary call costs grpcio a few hundred microseconds of server CPU before any shoal code runs;
a message on an open stream costs a fraction of that, and the principal is established once,
when the stream opens. Each batch of a request message becomes its own task calling
`enqueue_many` on the caller's `GuardedService` (so the right to enqueue is checked per batch
and namespace, exactly as for a unary call), which lets the store commit the batches in flight
together. A batch is answered only after its COMMIT; results that are ready together travel in
one response message. A refused batch (invalid, not allowed) gets its error as a result and
the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from shoal.core.errors import ShoalError
from shoal.core.ports import Enqueued
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import CallerService
from shoal.protocols.grpc._decoding import Malformed
from shoal.protocols.grpc._status import error_message
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2

__all__ = ["EnqueueSession", "EnqueueSessions"]

logger = logging.getLogger(__name__)

#: Batches of one stream stored or waiting to be at once; past it the stream stops reading
#: (gRPC's flow control then holds the client back) until results have been sent.
MAX_IN_FLIGHT = 256


def enqueued_to_pb(item: Enqueued) -> jobs_pb2.Enqueued:
    """What the server decided about a stored job (the whole job if it existed already)."""
    job = item.job
    if not item.created:
        return jobs_pb2.Enqueued(id=job.id, created=False, job=codec.job_to_pb(job))
    message = jobs_pb2.Enqueued(
        id=job.id,
        created=True,
        state=codec.state_to_pb(job.state),
        created_at=job.created_at,
        run_at=job.run_at,
        max_attempts=job.max_attempts,
        backoff=job.backoff,
    )
    if job.timeout is not None:
        message.timeout = job.timeout
    return message


class EnqueueSession:
    """One `EnqueueStream` call: reads batches, stores each in its own task, sends results."""

    def __init__(self, service: CallerService) -> None:
        self._service = service
        self._results: list[jobs_pb2.EnqueueBatchResult] = []
        self._wake = asyncio.Event()
        # A batch holds its room from its reading until its result is handed to gRPC, so a
        # client that writes without reading cannot make results pile up either.
        self._room = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading = True
        self._reader: asyncio.Task[None] | None = None

    async def serve(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The response messages, until the client has finished writing (or `close`) and all
        that was read is answered.
        """
        self._reader = asyncio.create_task(self._read(requests))
        try:
            while self._reading or self._tasks or self._results:
                await self._wake.wait()
                self._wake.clear()
                if self._results:
                    results, self._results = self._results, []
                    yield jobs_pb2.EnqueueStreamResponse(results=results)
                    for _ in results:
                        self._room.release()
            if not self._reader.cancelled():
                await self._reader  # raises what ended the reading, if anything but the end
        finally:
            self._reader.cancel()

    def close(self) -> None:
        """Read no more batches; the stream ends once those read are answered (shutdown)."""
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self, requests: AsyncIterator[Any]) -> None:
        try:
            async for request in requests:
                if isinstance(request, Malformed):
                    # no batch can be named: seq 0 carries the error
                    await self._room.acquire()
                    self._answer(jobs_pb2.EnqueueBatchResult(error=error_message(request.error())))
                    continue
                for batch in request.batches:
                    await self._room.acquire()
                    task = asyncio.create_task(self._store(batch))
                    self._tasks.add(task)
                    task.add_done_callback(self._finished)
        finally:
            self._reading = False
            self._wake.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    def _answer(self, result: jobs_pb2.EnqueueBatchResult) -> None:
        self._results.append(result)
        self._wake.set()

    async def _store(self, batch: jobs_pb2.EnqueueBatch) -> None:
        try:
            items = await self._service.enqueue_many([codec.enqueue_from_pb(r) for r in batch.jobs])
        except ShoalError as error:
            self._answer(jobs_pb2.EnqueueBatchResult(seq=batch.seq, error=error_message(error)))
            return
        except Exception:
            # A bug, not a refusal: this batch fails, the stream and the other batches go on.
            logger.exception("enqueue batch failed", extra={"event": "grpc.enqueue_failed"})
            status = grpc.StatusCode.INTERNAL.value[0]
            internal = model_pb2.Error(status=status, code="internal", message="internal error")
            self._answer(jobs_pb2.EnqueueBatchResult(seq=batch.seq, error=internal))
            return
        jobs = [enqueued_to_pb(item) for item in items]
        self._answer(jobs_pb2.EnqueueBatchResult(seq=batch.seq, jobs=jobs))


class EnqueueSessions:
    """The open `EnqueueStream` calls of a server, so that a shutdown can end them: a client
    keeps its stream open, and the server's grace period would otherwise wait for it.
    """

    def __init__(self) -> None:
        self._open: set[EnqueueSession] = set()
        self._closing = False

    async def serve(
        self, service: CallerService, requests: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        """Serve one stream (none once closing: it ends at once, the client gets Unavailable)."""
        if self._closing:
            return
        session = EnqueueSession(service)
        self._open.add(session)
        try:
            async for response in session.serve(requests):
                yield response
        finally:
            self._open.discard(session)

    def close(self) -> None:
        """End every stream once what it read is answered, and refuse new ones."""
        self._closing = True
        for session in self._open:
            session.close()
