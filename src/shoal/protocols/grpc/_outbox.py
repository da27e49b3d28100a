"""What a worker stream session holds for its worker (`Outbox`) and from it (`Storing`), with
the bounds its reader and dispatcher wait on.

The messages to send wait in the outbox while the transport does not take them, that is while
the worker does not read. Unbounded, a worker that sent without reading grew the server without
limit (300,000 empty messages, each answered with an error: +220 MB on gRPC; 1.5M frames on the
native framing: +1.2 GB). While the outbox is `full`, the session's reader takes no more of the
worker's messages, so that the transport's flow control holds the worker back (HTTP/2 windows;
the native framing stops reading the connection once the call holds `CALL_HELD_MESSAGES`, and
ends the call if its handler takes none for `STALLED_AFTER`), and the dispatcher claims nothing.

That cannot deadlock the session: the outbox is emptied by the stream's writer, which waits for
the worker to read and for nothing else. The other producers (a cancellation, a drain, an error,
the acks of outcomes being stored) never wait; what they add is bounded by what was read or is
held.

The outcome batches being stored are bounded too: the reader does not wait for each (the next
is read meanwhile, and both can be stored in one group commit), so a store slower than the
worker (a lock wait, a checkpoint) let them pile up without limit.
"""

from __future__ import annotations

import asyncio
from collections import deque

from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2

__all__ = ["Outbox", "Storing"]

Message = workers_pb2.ServerMessage


class Outbox:
    """A FIFO of messages (None: the stream ends), `full` once it holds `max_messages` or
    `max_bytes` (the encoded sizes `put` was told).
    """

    __slots__ = ("_bytes", "_getter", "_items", "_room", "max_bytes", "max_messages")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[tuple[Message | None, int]] = deque()
        self._bytes = 0
        self._getter: asyncio.Future[None] | None = None
        #: Producers waiting until the outbox is not full.
        self._room: list[asyncio.Future[None]] = []

    def qsize(self) -> int:
        """The messages waiting."""
        return len(self._items)

    @property
    def full(self) -> bool:
        """Whether a producer that can wait should (see `room`)."""
        return len(self._items) >= self.max_messages or self._bytes >= self.max_bytes

    def put(self, message: Message | None, size: int = 0) -> None:
        """Queue `message` (whose encoded size counts against `max_bytes`); never waits."""
        self._items.append((message, size))
        self._bytes += size
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> Message | None:
        """The next message, waiting for one (one consumer)."""
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        message, size = self._items.popleft()
        self._bytes -= size
        if self._room and not self.full:
            waiting, self._room = self._room, []
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)
        return message

    async def room(self) -> None:
        """Until the outbox is not full."""
        while self.full:
            waiter = asyncio.get_running_loop().create_future()
            self._room.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._room:
                    self._room.remove(waiter)


class Storing:
    """The tasks storing a worker's outcome batches, with what their messages took: `full` at
    `max_tasks` of them or `max_bytes`.
    """

    __slots__ = ("_bytes", "_tasks", "max_bytes", "max_tasks")

    def __init__(self, max_tasks: int, max_bytes: int) -> None:
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self._tasks: dict[asyncio.Task[None], int] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def full(self) -> bool:
        """Whether the reader should wait for one to end (`one_done`)."""
        return len(self._tasks) >= self.max_tasks or self._bytes >= self.max_bytes

    def add(self, task: asyncio.Task[None], size: int) -> None:
        """A task storing a batch whose message took `size` bytes; forgotten when it ends."""
        self._tasks[task] = size
        self._bytes += size
        task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Task[None]) -> None:
        self._bytes -= self._tasks.pop(task, 0)

    async def one_done(self) -> None:
        """Until one of the tasks has ended."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)

    async def all_done(self) -> None:
        """Until every task has ended (their failures are the session's `_task_done`'s)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
