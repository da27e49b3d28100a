"""The messages a client sent on one call, waiting for its handler to take them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["Inbox"]


class Inbox:
    """A call's received message bodies, in order, until the client half-closes.

    `on_take` runs each time the handler takes a message: the connection counts what all its
    calls hold and stops reading the socket while that is too much.
    """

    __slots__ = ("_closed", "_items", "_on_take", "_waiter")

    def __init__(self, on_take: Callable[[], None]) -> None:
        self._items: deque[bytes] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._on_take = on_take

    def put(self, body: bytes) -> bool:
        """A message arrived; False if it was dropped (after the half-close: the client broke
        the rules).
        """
        if self._closed:
            return False
        self._items.append(body)
        self._wake()
        return True

    def drop(self) -> int:
        """The call ended: forget the messages not taken; how many there were."""
        count = len(self._items)
        self._items.clear()
        self._closed = True
        self._wake()
        return count

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
        self._on_take()
        return body

    async def messages(self, decode: Callable[[bytes], Any]) -> AsyncIterator[Any]:
        """The decoded messages, as a stream handler's request iterator."""
        while (body := await self.get()) is not None:
            yield decode(body)
