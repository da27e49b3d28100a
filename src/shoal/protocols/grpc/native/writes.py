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
from typing import cast

from shoal.protocols.grpc.native.frames import PREFACE

__all__ = ["Coalescer", "FramedProtocol"]


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


class FramedProtocol(asyncio.Protocol):
    """What both ends of a native connection do with their transport: send the preface, write
    frames through a `Coalescer`, hold writers back while the socket's buffer is full, hang up.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._out: Coalescer | None = None
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the preface; frames go through a `Coalescer` from now on."""
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = transport = cast(asyncio.Transport, transport)
        transport.write(PREFACE)
        self._out = Coalescer(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop what is pending and release anyone waiting to write."""
        self._transport = None
        if self._out is not None:
            self._out.detach()
        self._writable.set()

    def pause_writing(self) -> None:
        """The socket's buffer is full: `drained` waits."""
        self._writable.clear()

    def resume_writing(self) -> None:
        """The socket takes writes again."""
        self._writable.set()

    def write(self, data: bytes) -> None:
        """Send frames, with the others of this loop turn (dropped once the connection is
        gone).
        """
        if self._out is not None:
            self._out.write(data)

    async def drained(self) -> None:
        """Until the socket's send buffer is below its high-water mark."""
        if not self._writable.is_set():
            await self._writable.wait()

    def close(self) -> None:
        """Send what is pending and hang up."""
        if self._transport is not None:
            if self._out is not None:
                self._out.flush()
            self._transport.close()
