"""Frames written in one turn of the event loop leave in one `write`.

A socket write is a system call, and on a small VM one that wakes the peer costs tens of
microseconds. Under load a connection produces many frames per loop turn (acks, assignments,
credits, outcomes of other calls): gathering them makes one system call of them. A frame waits
at most until the loop has run the callbacks already queued, which is microseconds.
"""

from __future__ import annotations

import asyncio

__all__ = ["Coalescer"]


class Coalescer:
    """Collects the frames of one loop turn for one transport."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport: asyncio.WriteTransport | None = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        """Send `data` with whatever else this turn writes."""
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)

    def flush(self) -> None:
        """Write what is pending now."""
        pending, self._pending = self._pending, None
        if pending and self._transport is not None and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def detach(self) -> None:
        """The transport is gone: drop what is pending."""
        self._transport = None
        self._pending = None
