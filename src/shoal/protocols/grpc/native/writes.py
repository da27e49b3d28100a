"""The first frame of a loop turn leaves at once; the others of that turn leave together.

A socket write is a system call, and on a small VM one that wakes the peer costs tens of
microseconds. Under load a connection produces many frames per loop turn (acks, assignments,
credits, outcomes of other calls): gathering them makes one system call of them, at the end of
the turn. A lone frame (a call's request, its answer, an assignment to an idle worker) is
latency: holding it until the loop has run its other callbacks and polled again cost W3's
path a loop turn per hop, so the first frame of a turn is written at once.
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
        """Send `data`: now if it is the turn's first frame, else with the turn's others."""
        pending = self._pending
        if pending is None:
            self._pending = []
            self._loop.call_soon(self.flush)
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(data)
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
