"""The outcomes of one worker stream (`GrpcSession`): completions and failures finished in the
same loop tick travel in one message, split below the server's message limit, and each waits
for the ack (or the error) that names its job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shoal.core.errors import ShoalError
from shoal.core.model import JobError, LeaseRef
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2
from shoal.sdk import _grpc_codec as codec
from shoal.sdk._transport import MAX_ERROR_BYTES

__all__ = ["OutcomeBatches", "result_bound", "settle"]

T = TypeVar("T")
_Item = workers_pb2.Completion | workers_pb2.Failure

#: Room kept in a message for what travels with a result or an error (ids, token, framing):
#: a message over the server's limit ends the whole worker stream.
_ENVELOPE = 64 * 1024
#: Bytes an outcome takes besides its result or error text (ids, token, tags), at most.
_ITEM_BYTES = 256


class OutcomeBatches:
    """Outcomes in flight on a worker stream, each until its ack.

    `send` writes an `Outcomes` message on the stream; `tasks` holds the session's background
    writes (a flush runs as one).
    """

    def __init__(
        self,
        send: Callable[[workers_pb2.Outcomes], Awaitable[None]],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._send = send
        self._tasks = tasks
        #: The largest message sent: the channel's, or the server's if smaller.
        self.max_message = MAX_MESSAGE_BYTES
        #: Why the stream ended, once it has: no outcome goes out after.
        self.closed: ShoalError | None = None
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._batch: list[_Item] = []
        #: About the bytes of `_batch` (results and error texts): only a batch near the
        #: message limit is measured exactly and split (`_within_limit`).
        self._batch_bytes = 0

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

    def acked(self, job_id: str) -> None:
        """The server stored the job's outcome."""
        settle(self._waiting.pop(job_id, None), None)

    def refused(self, job_id: str, failure: ShoalError) -> bool:
        """The server refused the job's outcome; False if none was waiting."""
        future = self._waiting.pop(job_id, None)
        if future is None:
            return False
        future.set_exception(failure)
        return True

    def end(self, reason: ShoalError) -> None:
        """The stream ended: every outcome waiting fails with `reason`, and later ones too."""
        self.closed = reason
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(reason)
        self._waiting.clear()

    async def _outcome(self, job_id: str, item: _Item, size: int) -> None:
        # Outcomes finished in the same loop tick travel in one message (the protocol batches).
        # One outcome per job is in flight: an answer names the job, not the lease, and the
        # server stores batches concurrently, so it may answer two outcomes of one job (a lost
        # attempt's and the new attempt's) in either order. The second waits for the first's.
        while (earlier := self._waiting.get(job_id)) is not None:
            await asyncio.wait({earlier})  # a cancelled one: its stand-in comes next turn
        if self.closed is not None:
            raise self.closed
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting[job_id] = future
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
            if self._waiting.get(job_id) is future:
                stand_in: asyncio.Future[None] = loop.create_future()
                stand_in.add_done_callback(_retrieve)
                self._waiting[job_id] = stand_in
            raise

    def _flush_soon(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        batch, self._batch = self._batch, []
        limit = self.max_message - _ENVELOPE
        size, self._batch_bytes = self._batch_bytes, 0
        for part in [batch] if size <= limit // 2 else _within_limit(batch, limit):
            completed = [item for item in part if isinstance(item, workers_pb2.Completion)]
            failed = [item for item in part if isinstance(item, workers_pb2.Failure)]
            try:
                await self._send(workers_pb2.Outcomes(completed=completed, failed=failed))
            except ShoalError as error:
                for item in part:
                    future = self._waiting.pop(item.job_id, None)
                    if future is not None and not future.done():
                        future.set_exception(error)


def _within_limit(batch: list[_Item], limit: int) -> list[list[_Item]]:
    """`batch` in order, in parts of at most `limit` bytes each (an item alone may exceed it):
    a few large results finished together must not add up to one message the server refuses.
    """
    parts: list[list[_Item]] = [[]]
    size = 0
    for item in batch:
        item_size = item.ByteSize()
        if parts[-1] and size + item_size > limit:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += item_size
    return parts


def result_bound(max_message: int) -> int:
    """The most a result and its job's payload may take together, for a server whose messages
    are bounded by `max_message`: it sends the job back with both, and its last error.
    """
    return max(max_message - MAX_ERROR_BYTES - _ENVELOPE, 0)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def settle(future: asyncio.Future[T] | None, value: T) -> None:
    """Resolve `future` with `value`, unless it is None or already done."""
    if future is not None and not future.done():
        future.set_result(value)
