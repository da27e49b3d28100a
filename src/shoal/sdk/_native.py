"""A `grpc.aio.Channel` over shoal's native framing (`shoal://host:port`, `shoals://` for TLS).

The generated stubs and `GrpcTransport` run on it unchanged: it offers the four call shapes
with grpc.aio's interfaces, and the server serves the same servicers behind the same
interceptors. What changes is the cost: a call is a few frames on one TCP connection (see
docs/native-protocol.md), not an HTTP/2 stream through grpcio's core and its poller thread,
which costs a Python client several hundred microseconds a call.

One connection carries every call. It is dialled on first use and again after it is lost:
calls in flight then fail with UNAVAILABLE, as on a gRPC channel, and the SDK's workers and
enqueue stream reconnect as they do there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import grpc
import grpc.aio

from shoal.protocols.grpc.gen.shoal.v1 import native_pb2
from shoal.protocols.grpc.native.metadata import to_entries
from shoal.sdk._native_calls import (
    NativeCall,
    StreamStreamCall,
    StreamUnaryCall,
    UnaryStreamCall,
    UnaryUnaryCall,
)
from shoal.sdk._native_connection import NativeConnection, retrieve

__all__ = ["RESPONSE_WINDOW", "NativeChannel"]

logger = logging.getLogger(__name__)

#: Responses a streaming call lets the server send ahead of its reading (`CallHeader.window`):
#: a stream nobody reads holds at most this many, and other calls are not held up by it.
RESPONSE_WINDOW = 256
#: Seconds to wait for the server's preface after the TCP (and TLS) handshake.
_PREFACE_WAIT = 5.0
Metadata = Iterable[tuple[str, str | bytes]]
#: What a call may be given as metadata (as grpc.aio's calls take it).
CallMetadata = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]


class NativeChannel(grpc.aio.Channel):
    """See the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        metadata: Metadata = (),
    ) -> None:
        self.host, self.port, self._tls = host, port, tls
        self._metadata = to_entries(metadata)
        self._connection: NativeConnection | None = None
        self._dialing: asyncio.Task[NativeConnection] | None = None
        self._closed = False
        self._state_changed: asyncio.Event | None = None
        #: Calls made while not connected, waiting for the dial (held: tasks are weak).
        self._starting: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """`host:port`."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def header(
        self, method: str, metadata: Metadata | None, timeout: float | None, window: int = 0
    ) -> bytes:
        """A CALL frame's body."""
        header = native_pb2.CallHeader(method=method, metadata=self._metadata, window=window)
        header.metadata.extend(to_entries(metadata or ()))
        if timeout is not None:
            header.timeout = timeout
        return header.SerializeToString()

    # --- connecting --------------------------------------------------------------------------

    def _changed(self) -> None:
        if self._state_changed is not None:
            self._state_changed.set()
            self._state_changed = None

    def _lost(self, connection: NativeConnection) -> None:
        if self._connection is connection:
            self._connection = None
            self._changed()

    async def _dial(self) -> NativeConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            partial(NativeConnection, self._lost),
            self.host,
            self.port,
            ssl=self._tls,
            server_hostname=self.host if self._tls is not None else None,
        )
        try:
            await asyncio.wait_for(asyncio.shield(connection.ready), _PREFACE_WAIT)
            if not connection.alive:
                # lost in the loop turn that read the preface, before this task resumed
                raise ConnectionError("the server hung up")
        except BaseException:
            await connection.hang_up()
            raise
        if self._closed:
            await connection.hang_up()
            raise ConnectionError("the channel is closed")
        self._connection = connection
        self._changed()
        return connection

    async def connect(self) -> NativeConnection:
        """The live connection, dialled now if there is none. OSError if it cannot be made."""
        connection = self._connection
        if connection is not None and connection.alive:
            return connection
        if self._closed:
            raise ConnectionError("the channel is closed")
        try:
            return await asyncio.shield(self._start_dial())
        except TimeoutError as exc:
            raise ConnectionError(f"{self.address} did not answer as a shoal server") from exc

    def _start_dial(self) -> asyncio.Task[NativeConnection]:
        """The dial under way, or a new one (its failure read here if nobody awaits it)."""
        if self._dialing is None or self._dialing.done():
            self._dialing = asyncio.get_running_loop().create_task(self._dial())
            self._dialing.add_done_callback(retrieve)
            self._changed()
        return self._dialing

    def start(self, call: NativeCall, request: bytes | None = None) -> None:
        """Send `call` now if connected, else once connected (failing it if that fails)."""
        connection = self._connection
        if connection is not None and connection.alive:
            connection.open(call, request)
            return
        if self._closed:
            call.lost("the channel is closed")
            return
        task = asyncio.get_running_loop().create_task(self._start_later(call, request))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_later(self, call: NativeCall, request: bytes | None) -> None:
        try:
            connection = await self.connect()
        except (OSError, ssl.SSLError) as exc:
            call.lost(f"failed to connect to {self.address}: {exc}")
            return
        except asyncio.CancelledError:
            # the channel closed during the dial (or this task is being cancelled): the call
            # must end either way, never wait for ever
            call.lost("the channel is closed")
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return
        if not call.done():
            connection.open(call, request)

    # --- grpc.aio.Channel --------------------------------------------------------------------

    async def channel_ready(self) -> None:
        """Until connected, retrying (callers bound it with a timeout)."""
        delay = 0.05
        while True:
            try:
                await self.connect()
                return
            except (OSError, ssl.SSLError):
                if self._closed:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """READY, CONNECTING or IDLE."""
        if self._closed:
            return grpc.ChannelConnectivity.SHUTDOWN
        if self._connection is not None and self._connection.alive:
            return grpc.ChannelConnectivity.READY
        if self._dialing is not None and not self._dialing.done():
            return grpc.ChannelConnectivity.CONNECTING
        if try_to_connect:
            self._start_dial()
        return grpc.ChannelConnectivity.IDLE

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        """Until `get_state()` differs from `last_observed_state`."""
        while self.get_state() is last_observed_state:
            if self._state_changed is None:
                self._state_changed = asyncio.Event()
            await self._state_changed.wait()

    async def close(self, grace: float | None = None) -> None:
        """Hang up; calls in flight end (CANCELLED on a gRPC channel, UNAVAILABLE here)."""
        self._closed = True
        if self._dialing is not None and not self._dialing.done():
            self._dialing.cancel()
            with contextlib.suppress(BaseException):
                await self._dialing
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.hang_up()
        self._changed()

    async def __aenter__(self) -> NativeChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _UnaryUnary:
        """A callable for a method with one request and one response."""
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _UnaryStream:
        """A callable for a method with one request and a stream of responses."""
        return _UnaryStream(self, method, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _StreamUnary:
        """A callable for a method with a stream of requests and one response."""
        return _StreamUnary(self, method, request_serializer, response_deserializer)

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _StreamStream:
        """A callable for a method streaming both ways."""
        return _StreamStream(self, method, request_serializer, response_deserializer)


def _identity(data: Any) -> Any:
    return data


class _Method:
    """One method of a channel: its header (made once) and how to (de)serialize."""

    #: The response window of the method's calls (0: one response, none needed).
    window = 0

    def __init__(
        self,
        channel: NativeChannel,
        method: str,
        serialize: Callable[[Any], bytes] | None,
        deserialize: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        self._method = method
        self._serialize: Callable[[Any], bytes] = serialize or _identity
        self._deserialize: Callable[[bytes], Any] = deserialize or _identity
        self._header = channel.header(method, None, None, self.window)

    def _header_for(self, metadata: Metadata | None, timeout: float | None) -> bytes:
        if not metadata and timeout is None:
            return self._header
        return self._channel.header(self._method, metadata, timeout, self.window)


class _UnaryUnary(_Method, grpc.aio.UnaryUnaryMultiCallable):  # type: ignore[type-arg]
    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> UnaryUnaryCall:
        start = partial(self._channel.start, request=self._serialize(request))
        header = self._header_for(metadata, timeout)
        return UnaryUnaryCall(start, header, self._deserialize, timeout)


class _UnaryStream(_Method, grpc.aio.UnaryStreamMultiCallable):  # type: ignore[type-arg]
    window = RESPONSE_WINDOW

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> UnaryStreamCall:
        start = partial(self._channel.start, request=self._serialize(request))
        header = self._header_for(metadata, timeout)
        return UnaryStreamCall(start, header, self._deserialize, timeout, self.window)


class _StreamStream(_Method, grpc.aio.StreamStreamMultiCallable):  # type: ignore[type-arg]
    window = RESPONSE_WINDOW

    def __call__(
        self,
        request_iterator: AsyncIterator[Any] | Iterator[Any] | None = None,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> StreamStreamCall:
        header = self._header_for(metadata, timeout)
        call = StreamStreamCall(
            self._channel.start, header, self._deserialize, timeout, self._serialize, self.window
        )
        if request_iterator is not None:
            _feed(call, request_iterator)
        return call


class _StreamUnary(_Method, grpc.aio.StreamUnaryMultiCallable):  # type: ignore[type-arg]
    def __call__(
        self,
        request_iterator: AsyncIterator[Any] | Iterator[Any] | None = None,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> StreamUnaryCall:
        header = self._header_for(metadata, timeout)
        call = StreamUnaryCall(
            self._channel.start, header, self._deserialize, timeout, self._serialize
        )
        if request_iterator is not None:
            _feed(call, request_iterator)
        return call


def _feed(call: StreamStreamCall, requests: AsyncIterator[Any] | Iterator[Any]) -> None:
    """Write `requests` on `call`, then half-close it (grpc.aio's request iterators)."""

    async def feed() -> None:
        try:
            if hasattr(requests, "__aiter__"):
                async for request in requests:
                    await call.write(request)
            else:
                for request in requests:
                    await call.write(request)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, asyncio.CancelledError):
            pass  # the call ended: its reader sees why
        except Exception:
            logger.exception("a request iterator failed; its call is cancelled")
            call.cancel()  # as grpc.aio

    call.feeder = asyncio.get_running_loop().create_task(feed())
