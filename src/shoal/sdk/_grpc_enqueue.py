"""The client side of `JobService.EnqueueStream`: every enqueue of a transport on one stream.

The stream opens on the first enqueue and again after it broke. Each call becomes a batch with
its own sequence number and waits for its own result, which the server sends only after the
batch's COMMIT. Callers that enqueue while a message is being written wait for the next one,
which carries all their batches: concurrent producers pipeline, and a lone producer pays one
message each way per call. A server without the method (UNIMPLEMENTED) is asked with unary
`EnqueueMany` from then on; so is, for their one call, a batch whose stream ended before its
first message went out (see `_NotSent`).

If the stream breaks while a batch is in flight, its caller gets `Unavailable`, as with a unary
call that broke: the batch may or may not have been stored.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.core.errors import ShoalError, Unavailable, error_from_code
from shoal.core.model import DEFAULT_NAMESPACE, DEFAULT_QUEUE, Job, JobId
from shoal.core.ports import Enqueued
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2
from shoal.sdk import _grpc_codec as codec

__all__ = ["EnqueueStream"]


class _Unsupported(Exception):
    """The server does not know `EnqueueStream` (nothing was stored)."""


class _NotSent(Exception):
    """The call ended before its first message went out: nothing of it reached the server.

    grpc reports a call the server ended while the client was writing as INTERNAL ("Internal
    error from Core"), the server's own status lost: an older server's UNIMPLEMENTED among
    them. A call none of whose writes completed sent nothing.
    """


Waiting = tuple["asyncio.Future[list[Enqueued]]", Sequence[EnqueueRequest]]


class _Call:
    """One `EnqueueStream` call: its batches in flight, a writer while some wait to be sent."""

    def __init__(self, call: Any) -> None:
        self.call = call
        #: The caller's future and requests per seq, from their batch's queuing to its result.
        self.waiting: dict[int, Waiting] = {}
        self.outgoing: list[jobs_pb2.EnqueueBatch] = []
        self.writer: asyncio.Task[None] | None = None
        self.reader = asyncio.create_task(self._read())
        #: Why the call ended; None while it is usable.
        self.failure: Exception | None = None
        #: A message was written: from then on a batch in flight may have been stored.
        self.sent = False
        #: The transport closes: its callers get `Unavailable`, whatever was sent.
        self.closing = False

    def send(self, batch: jobs_pb2.EnqueueBatch) -> None:
        self.outgoing.append(batch)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        # Whatever piles up while a message is written goes in the next one.
        try:
            while self.outgoing and self.failure is None:
                batches, self.outgoing = self.outgoing, []
                await self.call.write(jobs_pb2.EnqueueStreamRequest(batches=batches))
                self.sent = True
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
            self.call.cancel()  # the call ended: the reader fails every batch still waiting
        finally:
            self.writer = None
            if self.failure is not None:  # the reader ended during the write and left it to us
                self._fail_waiting()

    async def _read(self) -> None:
        failure: Exception = Unavailable("the enqueue stream closed")
        try:
            while (message := await self.call.read()) is not EOF:
                for result in message.results:
                    self._settle(result)
        except grpc.aio.AioRpcError as error:
            unsupported = error.code() == grpc.StatusCode.UNIMPLEMENTED
            failure = _Unsupported() if unsupported else codec.error_from_rpc(error)
        except asyncio.CancelledError:
            # the call cancelled under us (closed) ends the stream; a cancelled task does not
            if not self.call.cancelled():
                raise
        finally:
            self.failure = failure
            self.call.cancel()
            if self.writer is None:  # else the write's end tells whether anything was sent
                self._fail_waiting()

    def _fail_waiting(self) -> None:
        # Called with no write under way, so `sent` is final: no message, no batch stored.
        assert self.failure is not None
        unsent = not (self.sent or self.closing or isinstance(self.failure, _Unsupported))
        failure = _NotSent() if unsent else self.failure
        for future, _ in self.waiting.values():
            if not future.done():
                future.set_exception(failure)

    def _settle(self, result: jobs_pb2.EnqueueBatchResult) -> None:
        waiting = self.waiting.get(result.seq)
        if waiting is None or waiting[0].done():
            return  # its caller gave up waiting
        future, requests = waiting
        if result.HasField("error"):
            error = result.error
            future.set_exception(error_from_code(error.code, error.message, error.field or None))
        else:
            try:
                pairs = zip(result.jobs, requests, strict=True)
                jobs = [_enqueued(item, request) for item, request in pairs]
            except (ValueError, KeyError):  # a count or a state this client does not know
                future.set_exception(ShoalError("the server's answer to a batch is not valid"))
            else:
                future.set_result(jobs)


class EnqueueStream:
    """Enqueues of one transport over one `EnqueueStream` call (see the module docstring)."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub
        self._current: _Call | None = None
        self._seqs = itertools.count(1)
        #: The server answered UNIMPLEMENTED: unary calls from now on.
        self.unary = False

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Store `requests` in one transaction; returns after the server's commit."""
        if not self.unary:
            try:
                return await self._on_stream(requests)
            except _Unsupported:
                self.unary = True
            except _NotSent:
                pass  # the next call tries a new stream; this one is sent once, below
        return await self._unary(requests)

    async def close(self) -> None:
        """End the stream (callers still waiting get `Unavailable`)."""
        current, self._current = self._current, None
        if current is not None:
            current.closing = True
            current.call.cancel()
            await asyncio.gather(current.reader, return_exceptions=True)

    async def _unary(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        message = jobs_pb2.EnqueueManyRequest(jobs=[codec.enqueue_to_pb(r) for r in requests])
        try:
            response = await self._stub.EnqueueMany(message)
        except grpc.aio.AioRpcError as error:
            raise codec.error_from_rpc(error) from None
        return [Enqueued(codec.job_from_pb(item.job), item.created) for item in response.results]

    async def _on_stream(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        current = self._current
        if current is None or current.failure is not None:
            current = self._current = _Call(self._stub.EnqueueStream())
        seq = next(self._seqs)
        future: asyncio.Future[list[Enqueued]] = asyncio.get_running_loop().create_future()
        current.waiting[seq] = (future, requests)
        try:
            current.send(
                jobs_pb2.EnqueueBatch(seq=seq, jobs=[codec.enqueue_to_pb(r) for r in requests])
            )
            return await future
        finally:
            current.waiting.pop(seq, None)


def _enqueued(item: jobs_pb2.Enqueued, request: EnqueueRequest) -> Enqueued:
    if not item.created:
        return Enqueued(codec.job_from_pb(item.job), False)
    # A new job is its request as the server decoded it plus what the server decided.
    job = Job(
        id=JobId(item.id),
        namespace=request.namespace or DEFAULT_NAMESPACE,
        queue=request.queue or DEFAULT_QUEUE,
        task=request.task,
        payload=request.payload or b"null",
        state=codec.STATES[item.state],
        created_at=item.created_at,
        run_at=item.run_at,
        content_type=request.content_type or "application/json",
        priority=request.priority,
        max_attempts=item.max_attempts,
        backoff=item.backoff,
        timeout=item.timeout if item.HasField("timeout") else None,
        idempotency_key=request.idempotency_key,
        tags=tuple(request.tags),
        parent_id=request.parent_id or None,
    )
    return Enqueued(job, True)
