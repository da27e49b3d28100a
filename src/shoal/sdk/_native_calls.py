"""The calls of a `NativeChannel`, with grpc.aio's call interfaces and behaviour.

A call sends its CALL frame (and a unary request) when it is made, if the channel is
connected, else as soon as it is; it ends when the server's STATUS frame arrives, when it is
cancelled or times out, or when the connection is lost (UNAVAILABLE). As with grpc.aio,
awaiting or reading a cancelled call raises `asyncio.CancelledError`, and a status other than
OK raises `grpc.aio.AioRpcError` once the messages before it have been read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.protocols.grpc.gen.shoal.v1 import native_pb2
from shoal.protocols.grpc.native.frames import Kind, encode, encode_window
from shoal.protocols.grpc.native.metadata import from_entries

if TYPE_CHECKING:
    from shoal.sdk._native_connection import NativeConnection

__all__ = [
    "NativeCall",
    "StreamStreamCall",
    "StreamUnaryCall",
    "UnaryStreamCall",
    "UnaryUnaryCall",
]

_CODES = {code.value[0]: code for code in grpc.StatusCode}
_CANCELLED_DETAILS = "Locally cancelled by application!"


def _rpc_error(
    code: grpc.StatusCode, trailing: grpc.aio.Metadata, details: str
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details, None)


class NativeCall:
    """What every call shape shares: its frames in, its status, cancellation and deadline."""

    def __init__(
        self,
        start: Callable[[NativeCall], None],
        header: bytes,
        deserialize: Callable[[bytes], Any],
        timeout: float | None,
        window: int = 0,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        #: The response window the header asked for (0: none), and what was read since the
        #: last WINDOW frame gave it back.
        self._window = window
        self._read_since = 0
        self.id = 0
        self.header = header
        self._deserialize = deserialize
        self._connection: NativeConnection | None = None
        self._responses: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing = grpc.aio.Metadata()
        self._callbacks: list[Callable[[Any], None]] = []
        self._started: asyncio.Future[None] = self._loop.create_future()
        self._deadline: asyncio.TimerHandle | None = None
        self._expires = None if timeout is None else self._loop.time() + timeout
        if timeout is not None:
            self._deadline = self._loop.call_later(timeout, self._expire)
        start(self)

    # --- the connection's side -------------------------------------------------------------

    def opened(self, connection: NativeConnection, call_id: int) -> None:
        """The CALL frame is written: later frames of this call go on `connection`."""
        self._connection, self.id = connection, call_id
        if not self._started.done():
            self._started.set_result(None)

    def message(self, body: bytes) -> None:
        """A MESSAGE frame arrived."""
        self._responses.append(body)
        self._wake()

    def status(self, body: bytes) -> None:
        """The STATUS frame arrived: the call is over."""
        if not body:
            self._end(grpc.StatusCode.OK, "")
            return
        try:
            status = native_pb2.CallStatus.FromString(body)
        except DecodeError:
            self._end(grpc.StatusCode.INTERNAL, "the server sent a malformed status")
            return
        trailing = grpc.aio.Metadata(*from_entries(status.metadata))
        self._end(_CODES.get(status.code, grpc.StatusCode.UNKNOWN), status.details, trailing)

    def lost(self, details: str) -> None:
        """The connection is gone (or never came)."""
        self._end(grpc.StatusCode.UNAVAILABLE, details)

    def refuse(self, code: grpc.StatusCode, details: str) -> None:
        """End the call here with `code` (the server is told to stop it)."""
        if self._code is None:
            self._send(Kind.CANCEL)
            self._end(code, details)

    def _end(
        self, code: grpc.StatusCode, details: str, trailing: grpc.aio.Metadata | None = None
    ) -> None:
        if self._code is not None:
            return
        self._code, self._details = code, details
        if trailing is not None:
            self._trailing = trailing
        if self._deadline is not None:
            self._deadline.cancel()
        if self._connection is not None:
            self._connection.forget(self.id)
        if not self._started.done():
            self._started.set_result(None)
        self._wake()
        for callback in self._callbacks:
            self._loop.call_soon(callback, self)

    def _expire(self) -> None:
        if self._code is None:
            self._send(Kind.CANCEL)
            self._end(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _send(self, kind: Kind, body: bytes = b"") -> None:
        if self._connection is not None and self.id:
            self._connection.write(encode(kind, self.id, body))

    # --- grpc.aio.Call ---------------------------------------------------------------------

    def cancel(self) -> bool:
        """Abandon the call; False if it was already over."""
        if self._code is not None:
            return False
        self._send(Kind.CANCEL)
        self._end(grpc.StatusCode.CANCELLED, _CANCELLED_DETAILS)
        return True

    def cancelled(self) -> bool:
        """Whether the call was cancelled."""
        return self._code is grpc.StatusCode.CANCELLED

    def done(self) -> bool:
        """Whether the call is over."""
        return self._code is not None

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        """Run `callback(call)` once the call is over."""
        if self._code is not None:
            self._loop.call_soon(callback, self)
        else:
            self._callbacks.append(callback)

    def time_remaining(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self._expires is None else max(self._expires - self._loop.time(), 0.0)

    async def initial_metadata(self) -> grpc.aio.Metadata:
        """The native framing sends no initial metadata: empty."""
        return grpc.aio.Metadata()

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        """The server's trailing metadata, once the call is over."""
        await self._over()
        return self._trailing

    async def code(self) -> grpc.StatusCode:
        """The status, once the call is over."""
        await self._over()
        assert self._code is not None
        return self._code

    async def details(self) -> str:
        """The status details, once the call is over."""
        await self._over()
        return self._details

    async def wait_for_connection(self) -> None:
        """Until the call is sent (or over)."""
        await asyncio.shield(self._started)

    async def _over(self) -> None:
        while self._code is None:
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _error(self) -> BaseException:
        if self._code is grpc.StatusCode.CANCELLED and self._details == _CANCELLED_DETAILS:
            return asyncio.CancelledError()
        assert self._code is not None
        return _rpc_error(self._code, self._trailing, self._details)

    async def _single(self) -> Any:
        """The one response of a call with a unary response; raises for a status not OK."""
        try:
            await self._over()
        except asyncio.CancelledError:
            self.cancel()  # as grpc.aio: the task awaiting a call takes the call with it
            raise
        if self._code is not grpc.StatusCode.OK:
            raise self._error()
        if not self._responses:
            raise _rpc_error(grpc.StatusCode.INTERNAL, self._trailing, "no response")
        return self._deserialize(self._responses[-1])

    async def _next(self) -> Any:
        """The next response, `EOF` after an OK status; raises for any other status."""
        while not self._responses:
            if self._code is not None:
                if self._code is grpc.StatusCode.OK:
                    return EOF
                raise self._error()
            try:
                await self._wait()
            except asyncio.CancelledError:
                self.cancel()  # as grpc.aio
                raise
        body = self._responses.popleft()
        if self._window:
            self._read_since += 1
            if self._read_since >= max(1, self._window // 2):  # give back half at a time
                if self._code is None and self._connection is not None:
                    self._connection.write(encode_window(self.id, self._read_since))
                self._read_since = 0
        return self._deserialize(body)


class UnaryUnaryCall(NativeCall, grpc.aio.UnaryUnaryCall):  # type: ignore[type-arg]
    """One request, one response: await it."""

    def __await__(self) -> Generator[Any, None, Any]:
        return self._single().__await__()


class UnaryStreamCall(NativeCall, grpc.aio.UnaryStreamCall):  # type: ignore[type-arg]
    """One request, a stream of responses: `read()` them or iterate."""

    async def read(self) -> Any:
        """The next response, or `grpc.aio.EOF` after the last."""
        return await self._next()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (response := await self._next()) is not EOF:
            yield response


class StreamStreamCall(UnaryStreamCall, grpc.aio.StreamStreamCall):  # type: ignore[type-arg]
    """Streams both ways: `write()` requests, `done_writing()`, `read()` responses."""

    _half_closed = False
    #: The task writing a request iterator given to the call, if any.
    feeder: asyncio.Task[None] | None = None

    def __init__(
        self,
        start: Callable[[NativeCall], None],
        header: bytes,
        deserialize: Callable[[bytes], Any],
        timeout: float | None,
        serialize: Callable[[Any], bytes],
        window: int = 0,
    ) -> None:
        super().__init__(start, header, deserialize, timeout, window)
        self._serialize = serialize

    async def write(self, request: Any) -> None:
        """Send one request (waits while the connection's buffer is full)."""
        await self._writable()
        self._send(Kind.MESSAGE, self._serialize(request))
        if self._connection is not None:
            await self._connection.drained()

    async def done_writing(self) -> None:
        """Tell the server no more requests come."""
        if self._code is None and not self._half_closed:
            await self._writable()
            self._half_closed = True
            self._send(Kind.HALF_CLOSE)

    async def _writable(self) -> None:
        if not self._started.done():
            await asyncio.shield(self._started)
        if self._code is not None:  # as grpc.aio, whatever the status
            raise asyncio.InvalidStateError("the RPC is already finished")
        if self._half_closed:
            raise asyncio.InvalidStateError("the RPC is half closed (done_writing was called)")


class StreamUnaryCall(StreamStreamCall, grpc.aio.StreamUnaryCall):  # type: ignore[type-arg]
    """Streams requests, then await the one response."""

    def __await__(self) -> Generator[Any, None, Any]:
        return self._single().__await__()
