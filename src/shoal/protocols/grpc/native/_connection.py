"""One client connection on the native framing: frames in, calls run, frames out.

Each CALL frame starts a task that resolves the method's handler through the listener's
interceptors (the gRPC server's own: tolerant decoding, then authentication) and runs it as
grpc.aio would: a unary handler gets the first MESSAGE, a streaming one an iterator over them.
Responses go out as MESSAGE frames, the end as one STATUS frame; a unary call's response and
status leave in one write.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, cast

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from grpc.aio import EOF  # type: ignore[attr-defined]

from shoal.protocols.grpc.gen.shoal.v1 import native_pb2
from shoal.protocols.grpc.native._context import NativeContext
from shoal.protocols.grpc.native._inbox import Inbox
from shoal.protocols.grpc.native.frames import PREFACE, FrameDecoder, FramingError, Kind, encode
from shoal.protocols.grpc.native.writes import Coalescer

__all__ = ["NativeConnection", "Resolver"]

logger = logging.getLogger(__name__)

#: Messages all calls of a connection may hold before it stops reading the socket.
_HELD_HIGH, _HELD_LOW = 512, 128
#: Calls open at once on one connection.
MAX_CALLS = 1024


class Resolver(Protocol):
    """What a connection needs from its listener."""

    max_body: int
    closing: bool

    async def resolve(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> Any:
        """The (intercepted) `grpc.RpcMethodHandler` of `method`, or None."""
        ...

    def forget(self, connection: NativeConnection) -> None:
        """The connection closed."""
        ...


def _status(call: int, code: grpc.StatusCode, details: str = "", trailing: Any = ()) -> bytes:
    if code is grpc.StatusCode.OK and not details and not trailing:
        return encode(Kind.STATUS, call)  # an empty CallStatus: code 0
    status = native_pb2.CallStatus(code=code.value[0], details=details)
    for key, value in trailing:
        status.metadata.add(key=key, value=value.encode() if isinstance(value, str) else value)
    return encode(Kind.STATUS, call, status.SerializeToString())


def _metadata(header: native_pb2.CallHeader) -> tuple[tuple[str, str | bytes], ...]:
    # As in gRPC: values of keys ending in -bin are bytes, the others text.
    return tuple(
        (key, value if key.endswith("-bin") else value.decode("utf-8", "replace"))
        for key, value in ((entry.key, entry.value) for entry in header.metadata)
    )


class NativeConnection(asyncio.Protocol):
    """The server side of one connection (see the module docstring)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._decoder = FrameDecoder(resolver.max_body)
        self._transport: asyncio.Transport | None = None
        self._out: Coalescer | None = None
        self._calls: dict[int, tuple[asyncio.Task[None], Inbox]] = {}
        self._held = 0
        self._reading = True
        self._writable = asyncio.Event()
        self._writable.set()
        self._peer = ""
        self._auth: Mapping[str, list[bytes]] = {}

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The calls running now."""
        return [task for task, _ in self._calls.values()]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = transport = cast(asyncio.Transport, transport)
        host, port, *_ = transport.get_extra_info("peername") or ("", 0)
        self._peer = f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"
        self._auth = _auth_context(transport.get_extra_info("ssl_object"))
        transport.write(PREFACE)
        self._out = Coalescer(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._out is not None:
            self._out.detach()
        self._writable.set()
        for task, _ in self._calls.values():
            task.cancel()
        self._resolver.forget(self)

    def close(self) -> None:
        """Hang up (calls still running are cancelled by the loss of the connection)."""
        if self._transport is not None:
            if self._out is not None:
                self._out.flush()
            self._transport.close()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FramingError as exc:
            logger.warning(
                "native connection from %s broke the framing: %s",
                self._peer,
                exc,
                extra={"event": "native.framing_error", "peer": self._peer},
            )
            self.close()
            return
        for kind, call, body in frames:
            if kind == Kind.MESSAGE:
                entry = self._calls.get(call)
                if entry is not None:  # else the call ended: a late message is dropped
                    entry[1].put(body)
                    self._held += 1
            elif kind == Kind.CALL:
                self._open(call, body)
            elif kind == Kind.HALF_CLOSE:
                entry = self._calls.get(call)
                if entry is not None:
                    entry[1].close()
            elif kind == Kind.CANCEL:
                entry = self._calls.get(call)
                if entry is not None:
                    entry[0].cancel()
            elif kind == Kind.OVERSIZED:
                self._oversized(call)
            else:  # a STATUS from a client
                self.close()
                return
        if self._held > _HELD_HIGH and self._reading and self._transport is not None:
            self._reading = False
            self._transport.pause_reading()

    def _oversized(self, call: int) -> None:
        entry = self._calls.get(call)
        if entry is not None:
            entry[0].cancel()
        limit = self._resolver.max_body
        detail = f"a message of this call is larger than the server's limit of {limit} bytes"
        self._write(_status(call, grpc.StatusCode.RESOURCE_EXHAUSTED, detail))

    def _taken(self) -> None:
        self._held -= 1
        if not self._reading and self._held < _HELD_LOW and self._transport is not None:
            self._reading = True
            self._transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self._out is not None:
            self._out.write(data)

    def _open(self, call: int, body: bytes) -> None:
        if call in self._calls:
            logger.warning("native client reused call id %d", call, extra={"event": "native.bad"})
            self.close()
            return
        try:
            header = native_pb2.CallHeader.FromString(body)
        except DecodeError:
            self._write(_status(call, grpc.StatusCode.INVALID_ARGUMENT, "malformed call header"))
            return
        if self._resolver.closing:
            self._write(_status(call, grpc.StatusCode.UNAVAILABLE, "the server is shutting down"))
            return
        if len(self._calls) >= MAX_CALLS:
            detail = f"more than {MAX_CALLS} calls open on one connection"
            self._write(_status(call, grpc.StatusCode.RESOURCE_EXHAUSTED, detail))
            return
        inbox = Inbox(self._taken)
        task = asyncio.get_running_loop().create_task(self._serve(call, header, inbox))
        self._calls[call] = (task, inbox)

    async def _serve(self, call: int, header: native_pb2.CallHeader, inbox: Inbox) -> None:
        try:
            await self._run(call, header, inbox)
        except asyncio.CancelledError:
            pass  # the client cancelled the call or hung up: nobody to tell
        finally:
            self._held -= len(inbox)
            del self._calls[call]

    async def _run(self, call: int, header: native_pb2.CallHeader, inbox: Inbox) -> None:
        metadata = _metadata(header)
        handler = await self._resolver.resolve(header.method, metadata)
        if handler is None:
            detail = f"method {header.method} is not served here"
            self._write(_status(call, grpc.StatusCode.UNIMPLEMENTED, detail))
            return
        serialize = handler.response_serializer
        decode = handler.request_deserializer

        async def send(message: Any) -> None:
            self._write(encode(Kind.MESSAGE, call, serialize(message)))
            if not self._writable.is_set():
                await self._writable.wait()

        async def read() -> Any:
            body = await inbox.get()
            return EOF if body is None else decode(body)

        context = NativeContext(metadata, self._peer, self._auth, header.timeout, send, read)
        try:
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
                response = await behaviour(request, context)
                tail = encode(Kind.MESSAGE, call, serialize(response))
            end = context.end
            self._write(tail + _status(call, end.code, end.details, end.trailing))
        except grpc.aio.AbortError:
            end = context.end
            self._write(_status(call, end.code, end.details, end.trailing))
        except _NoRequest:
            detail = "a unary call needs its request message"
            self._write(_status(call, grpc.StatusCode.INVALID_ARGUMENT, detail))
        except Exception as exc:
            logger.exception(
                "native call %s failed",
                header.method,
                extra={"event": "native.call_error", "method": header.method},
            )
            detail = f"unexpected {type(exc).__name__}"
            self._write(_status(call, grpc.StatusCode.UNKNOWN, detail))


class _NoRequest(Exception):
    """The client half-closed a unary call without sending its request."""


async def _stream_out(result: Any, send: Callable[[Any], Awaitable[None]]) -> None:
    """Send what a streaming handler yields (or await one that writes through its context)."""
    if hasattr(result, "__aiter__"):
        responses: AsyncIterator[Any] = result
        async for response in responses:
            await send(response)
    else:
        await result


def _auth_context(ssl_object: ssl.SSLObject | None) -> Mapping[str, list[bytes]]:
    """What TLS verified about the client: its certificate's common names (mutual TLS)."""
    if ssl_object is None:
        return {}
    certificate = ssl_object.getpeercert()
    if not certificate:
        return {}
    subject: Any = certificate.get("subject", ())  # ((("commonName", "x"),), ...)
    names = [value.encode() for rdn in subject for key, value in rdn if key == "commonName"]
    return {"x509_common_name": names, "transport_security_type": [b"ssl"]} if names else {}
