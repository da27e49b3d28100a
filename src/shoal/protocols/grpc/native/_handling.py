"""Running one call of the native framing: resolve its handler, feed it, send what it answers.

The handler is the listener's, wrapped by its interceptors (tolerant decoding, then
authentication), and runs as grpc.aio would run it: a unary handler gets the first MESSAGE, a
streaming one an iterator over them. Every way a call ends sends exactly one STATUS; a unary
call's response and status leave in one write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.protocols.grpc.gen.shoal.v1 import native_pb2
from shoal.protocols.grpc.native._context import NativeContext
from shoal.protocols.grpc.native._inbox import Inbox
from shoal.protocols.grpc.native.frames import Kind, encode
from shoal.protocols.grpc.native.metadata import Pairs, from_entries, to_entries

__all__ = ["Link", "Window", "run_call", "status_frame"]

logger = logging.getLogger(__name__)

Metadata = Pairs


class Link(Protocol):
    """What a call needs from its connection."""

    peer: str
    auth: Any

    def write(self, data: bytes) -> None:
        """Send frames."""
        ...

    async def drained(self) -> None:
        """Until the connection may be written to again."""
        ...

    async def resolve(self, method: str, metadata: Metadata) -> Any:
        """The intercepted handler of `method`, or None."""
        ...


def status_frame(call: int, code: grpc.StatusCode, details: str = "", trailing: Any = ()) -> bytes:
    """A STATUS frame (an empty body for a bare OK)."""
    if code is grpc.StatusCode.OK and not details and not trailing:
        return encode(Kind.STATUS, call)
    status = native_pb2.CallStatus(code=code.value[0], details=details)
    status.metadata.extend(to_entries(trailing))
    return encode(Kind.STATUS, call, status.SerializeToString())


class Window:
    """How many more messages a streaming call may send before the client reads (WINDOW)."""

    __slots__ = ("_left", "_open")

    def __init__(self, size: int) -> None:
        self._left = size
        self._open = asyncio.Event()

    def grant(self, increment: int) -> None:
        """The client read some: it may be sent `increment` more."""
        self._left += increment
        self._open.set()

    async def take(self) -> None:
        """Until one more message may be sent, and count it."""
        while self._left <= 0:
            self._open.clear()
            await self._open.wait()
        self._left -= 1


class _NoRequest(Exception):
    """The client half-closed a unary call without sending its request."""


async def run_call(
    link: Link,
    call: int,
    header: native_pb2.CallHeader,
    inbox: Inbox,
    window: Window | None = None,
) -> None:
    """Run one call to its end and send its STATUS (not when cancelled: nobody to tell).

    With a `window`, a streamed response waits for the client's WINDOW frames once it has
    sent what the window allows.
    """
    context: NativeContext | None = None
    try:
        metadata = from_entries(header.metadata)
        handler = await link.resolve(header.method, metadata)
        if handler is None:
            detail = f"method {header.method} is not served here"
            link.write(status_frame(call, grpc.StatusCode.UNIMPLEMENTED, detail))
            return
        serialize, decode = handler.response_serializer, handler.request_deserializer

        async def send(message: Any) -> None:
            if window is not None:
                await window.take()
            link.write(encode(Kind.MESSAGE, call, serialize(message)))
            await link.drained()

        async def read() -> Any:
            body = await inbox.get()
            return EOF if body is None else decode(body)

        context = NativeContext(metadata, link.peer, link.auth, header.timeout, send, read)
        if handler.request_streaming:
            request: Any = inbox.messages(decode)
        else:
            body = await inbox.get()
            if body is None:
                raise _NoRequest
            request = decode(body)
        if handler.response_streaming:
            behaviour = handler.unary_stream or handler.stream_stream
            await _stream_out(behaviour(request, context), send)
            tail = b""
        else:
            behaviour = handler.unary_unary or handler.stream_unary
            tail = encode(Kind.MESSAGE, call, serialize(await behaviour(request, context)))
        end = context.end
        link.write(tail + status_frame(call, end.code, end.details, end.trailing))
    except grpc.aio.AbortError:
        assert context is not None  # only a handler aborts
        end = context.end
        link.write(status_frame(call, end.code, end.details, end.trailing))
    except _NoRequest:
        detail = "a unary call needs its request message"
        link.write(status_frame(call, grpc.StatusCode.INVALID_ARGUMENT, detail))
    except Exception as exc:
        logger.exception(
            "native call %s failed",
            header.method,
            extra={"event": "native.call_error", "method": header.method},
        )
        link.write(status_frame(call, grpc.StatusCode.UNKNOWN, f"unexpected {type(exc).__name__}"))


async def _stream_out(result: Any, send: Callable[[Any], Awaitable[None]]) -> None:
    """Send what a streaming handler yields (or await one that writes through its context)."""
    if hasattr(result, "__aiter__"):
        responses: AsyncIterator[Any] = result
        async for response in responses:
            await send(response)
    else:
        await result
