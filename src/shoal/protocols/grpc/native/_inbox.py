"""The messages a client sent on one call, waiting for its handler to take them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["MESSAGE_COST", "Inbox"]

#: What a held message costs beyond its body: a bytes object and its slot in the queue.
MESSAGE_COST = 64


class Inbox:
    """A call's received message bodies, in order, until the client half-closes.

    `held` is what the messages not taken yet cost (each its body and `MESSAGE_COST`);
    `on_take` runs with a message's cost each time the handler takes one: the connection
    bounds what its calls hold, each and together.
    """

    __slots__ = ("_closed", "_items", "_on_take", "_waiter", "held")

    def __init__(self, on_take: Callable[[int], None]) -> None:
        self._items: deque[bytes] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._on_take = on_take
        self.held = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, body: bytes) -> bool:
        """A message arrived; False if it was dropped (after the half-close: the client broke
        the rules).
        """
        if self._closed:
            return False
        self._items.append(body)
        self.held += len(body) + MESSAGE_COST
        self._wake()
        return True

    def drop(self) -> int:
        """The call ended: forget the messages not taken; what they cost."""
        held, self.held = self.held, 0
        self._items.clear()
        self._closed = True
        self._wake()
        return held

    def close(self) -> None:
        """The client sends no more."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> bytes | None:
        """The next message body, or None once the client half-closed and all were taken."""
        while not self._items:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        body = self._items.popleft()
        cost = len(body) + MESSAGE_COST
        self.held -= cost
        self._on_take(cost)
        return body

    async def messages(self, decode: Callable[[bytes], Any]) -> AsyncIterator[Any]:
        """The decoded messages, as a stream handler's request iterator."""
        while (body := await self.get()) is not None:
            yield decode(body)
