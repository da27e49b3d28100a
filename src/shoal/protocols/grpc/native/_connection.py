"""One client connection on the native framing: frames in, calls run, frames out.

Each CALL frame starts a task (`_handling.run_call`). The connection keeps the open calls by
id; a call leaves that table the moment it ends for the server: its task finished, the client
cancelled it, a message of it was too large, or its deadline passed. So a cancelled call's id
is free at once, and a call cancelled before its task ever ran leaves nothing behind.

What the client sends is bounded per call. A call holding more messages its handler has not
taken than `CALL_HELD_MESSAGES` or `CALL_HELD_BYTES` holds the client back: the connection stops
reading the socket (the framing has no request windows) until the handler has taken half of
them. A handler that takes none for `STALLED_AFTER` seconds meanwhile is stuck: its call ends
RESOURCE_EXHAUSTED and the connection reads again, so one such call cannot hold up the others
for good (before, it did). When all calls together hold more than `CONNECTION_HELD_BYTES`, the
call holding the most ends the same way. The connection also stops reading while the socket
cannot take what it writes, so a client that never reads cannot make it buffer answers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError

from shoal.core.errors import ResourceExhausted
from shoal.protocols.grpc._status import metadata_of, status_of
from shoal.protocols.grpc.gen.shoal.v1 import native_pb2
from shoal.protocols.grpc.native._handling import Metadata, Window, run_call, status_frame
from shoal.protocols.grpc.native._inbox import MESSAGE_COST, Inbox
from shoal.protocols.grpc.native.frames import (
    FrameDecoder,
    FramingError,
    Kind,
    window_increment,
)
from shoal.protocols.grpc.native.writes import FramedProtocol

__all__ = [
    "CALL_HELD_BYTES",
    "CALL_HELD_MESSAGES",
    "CONNECTION_HELD_BYTES",
    "MAX_CALLS",
    "STALLED_AFTER",
    "NativeConnection",
    "Resolver",
]

logger = logging.getLogger(__name__)

#: Calls open at once on one connection.
MAX_CALLS = 1024
#: Messages one call may hold that its handler has not taken before the connection stops
#: reading (see docs/native-protocol.md, Flow control).
CALL_HELD_MESSAGES = 1024
#: What one call's held messages may cost before that (each its body and `MESSAGE_COST`), at
#: least two of the largest messages.
CALL_HELD_BYTES = 64 * 1024 * 1024
#: Seconds a call over its bound may go without its handler taking a message before it ends.
STALLED_AFTER = 5.0
#: What the calls of a connection may hold together (four calls at their bound, at least eight
#: of the largest messages): past it the call holding the most ends.
CONNECTION_HELD_BYTES = 4 * CALL_HELD_BYTES


class Resolver(Protocol):
    """What a connection needs from its listener."""

    max_body: int
    closing: bool

    async def resolve(self, method: str, metadata: Metadata) -> Any:
        """The (intercepted) `grpc.RpcMethodHandler` of `method`, or None."""
        ...

    def opened(self, connection: NativeConnection) -> None:
        """The connection is up: `forget` will be called for it."""
        ...

    def forget(self, connection: NativeConnection) -> None:
        """The connection closed."""
        ...


class _Call:
    """An open call: its task, the messages waiting for it, its deadline and window."""

    __slots__ = ("deadline", "id", "inbox", "stall", "task", "window")

    def __init__(
        self, call_id: int, on_take: Callable[[_Call, int], None], window: Window | None
    ) -> None:
        self.id = call_id
        self.inbox = Inbox(partial(on_take, self))
        self.window = window
        self.task: asyncio.Task[None] | None = None
        self.deadline: asyncio.TimerHandle | None = None
        #: While the call holds more than its bound: when it ends if its handler takes nothing.
        self.stall: asyncio.TimerHandle | None = None


class NativeConnection(FramedProtocol):
    """The server side of one connection (see the module docstring)."""

    def __init__(self, resolver: Resolver) -> None:
        super().__init__()
        self._resolver = resolver
        self._decoder = FrameDecoder(resolver.max_body)
        self._calls: dict[int, _Call] = {}
        #: What the messages held by all calls cost, and the bounds (module docstring).
        self._held = 0
        largest = 2 * (resolver.max_body + MESSAGE_COST)
        self._call_bytes = max(CALL_HELD_BYTES, largest)
        self._connection_bytes = max(CONNECTION_HELD_BYTES, 4 * largest)
        #: Calls over their bound: the connection does not read while there is one.
        self._over = 0
        self._reading = True
        self.peer = ""
        self.auth: Mapping[str, list[bytes]] = {}

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The calls running now."""
        return [call.task for call in self._calls.values() if call.task is not None]

    # --- the transport ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        host, port, *_ = transport.get_extra_info("peername") or ("", 0)
        self.peer = f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"
        self.auth = _auth_context(transport.get_extra_info("ssl_object"))
        super().connection_made(transport)
        self._resolver.opened(self)
        if self._resolver.closing:
            # a TLS handshake that ended after `stop` hung up on the others
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # calls still running are cancelled here (a `close` ends up here too)
        super().connection_lost(exc)
        for call_id in list(self._calls):
            self._end(call_id)
        self._resolver.forget(self)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._update_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None:
            return
        writable = self._writable.is_set()
        if self._reading and (self._over or not writable):
            self._reading = False
            transport.pause_reading()
        elif not self._reading and not self._over and writable:
            self._reading = True
            transport.resume_reading()

    # --- what a call uses (`_handling.Link`; `write` and `drained` come from FramedProtocol) -

    async def resolve(self, method: str, metadata: Metadata) -> Any:
        """The intercepted handler of `method`, or None."""
        return await self._resolver.resolve(method, metadata)

    # --- frames -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FramingError as exc:
            logger.warning(
                "native connection from %s broke the framing: %s",
                self.peer,
                exc,
                extra={"event": "native.framing_error", "peer": self.peer},
            )
            self.close()
            return
        for kind, call_id, body in frames:
            if kind == Kind.MESSAGE:
                call = self._calls.get(call_id)
                # a message of a call that ended, or sent after its half-close, is dropped
                if call is not None and call.inbox.put(body):
                    self._held += len(body) + MESSAGE_COST
                    inbox = call.inbox
                    if call.stall is None and (
                        len(inbox) > CALL_HELD_MESSAGES or inbox.held > self._call_bytes
                    ):
                        self._hold_back(call)
                    elif self._held > self._connection_bytes:
                        self._shed()
            elif kind == Kind.CALL:
                self._open(call_id, body)
            elif kind == Kind.HALF_CLOSE:
                call = self._calls.get(call_id)
                if call is not None:
                    call.inbox.close()
            elif kind == Kind.CANCEL:
                self._end(call_id)
            elif kind == Kind.WINDOW:
                if not self._widen(call_id, body):
                    return
            elif kind == Kind.OVERSIZED:
                self._end(call_id)
                limit = self._resolver.max_body
                detail = f"a message of this call is larger than the server's limit of {limit} B"
                self.write(status_frame(call_id, grpc.StatusCode.RESOURCE_EXHAUSTED, detail))
            else:  # a STATUS from a client
                self.close()
                return

    def _widen(self, call_id: int, body: bytes) -> bool:
        try:
            increment = window_increment(body)
        except FramingError as exc:
            logger.warning("native client from %s: %s", self.peer, exc)
            self.close()
            return False
        call = self._calls.get(call_id)
        if call is not None and call.window is not None:
            call.window.grant(increment)
        return True

    def _taken(self, call: _Call, cost: int) -> None:
        self._held -= cost
        if call.stall is not None:
            self._relieve(call)

    def _hold_back(self, call: _Call) -> None:
        """The call is over its bound: stop reading until its handler takes half of it."""
        loop = asyncio.get_running_loop()
        call.stall = loop.call_later(STALLED_AFTER, self._overflow, call.id)
        self._over += 1
        self._update_reading()

    def _relieve(self, call: _Call) -> None:
        """The handler of a call over its bound took a message."""
        assert call.stall is not None
        call.stall.cancel()
        inbox = call.inbox
        if len(inbox) <= CALL_HELD_MESSAGES // 2 and inbox.held <= self._call_bytes // 2:
            call.stall = None
            self._over -= 1
            self._update_reading()
        else:  # the handler is alive: it has STALLED_AFTER again
            call.stall = asyncio.get_running_loop().call_later(
                STALLED_AFTER, self._overflow, call.id
            )

    def _overflow(self, call_id: int, *, shed: bool = False) -> None:
        """End a call that holds too much of what its client sent (see the module docstring):
        over its bound with a stuck handler, or (`shed`) holding the most of the connection's.
        """
        inbox = self._calls[call_id].inbox
        held = f"{len(inbox)} messages ({inbox.held} B) its handler has not taken"
        if shed:
            detail = (
                f"this call held {held}, the most of the calls of a connection holding more "
                f"than the server keeps for them ({self._connection_bytes} B)"
            )
        else:
            detail = (
                f"this call held {held}, more than the server keeps for one call "
                f"({CALL_HELD_MESSAGES} messages, {self._call_bytes} B), and its handler "
                f"took none for {STALLED_AFTER} s"
            )
        self._end(call_id)
        error = ResourceExhausted(detail)
        logger.warning(
            "native call %d from %s ended: %s",
            call_id,
            self.peer,
            detail,
            extra={"event": "native.call_overflow", "peer": self.peer},
        )
        self.write(status_frame(call_id, status_of(error), detail, metadata_of(error)))

    def _shed(self) -> None:
        """The calls together hold too much: end those holding the most until they do not."""
        while self._held > self._connection_bytes and self._calls:
            largest = max(self._calls, key=lambda call_id: self._calls[call_id].inbox.held)
            self._overflow(largest, shed=True)

    def _end(self, call_id: int, *, stop: bool = True) -> None:
        """The call is over for the server: its id is free, and its handler stops (`stop`;
        a handler that ended by itself has nothing to stop).
        """
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        if stop and call.task is not None:
            call.task.cancel()
        if call.deadline is not None:
            call.deadline.cancel()
        self._held -= call.inbox.drop()
        if call.stall is not None:
            call.stall.cancel()
            self._over -= 1
            self._update_reading()

    def _expire(self, call_id: int) -> None:
        self._end(call_id)
        self.write(status_frame(call_id, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))

    def _open(self, call_id: int, body: bytes) -> None:
        if call_id in self._calls:
            logger.warning(
                "native client reused the id of open call %d",
                call_id,
                extra={"event": "native.bad"},
            )
            self.close()
            return
        try:
            header = native_pb2.CallHeader.FromString(body)
        except DecodeError:
            detail = "malformed call header"
            self.write(status_frame(call_id, grpc.StatusCode.INVALID_ARGUMENT, detail))
            return
        if self._resolver.closing:
            detail = "the server is shutting down"
            self.write(status_frame(call_id, grpc.StatusCode.UNAVAILABLE, detail))
            return
        if len(self._calls) >= MAX_CALLS:
            detail = f"more than {MAX_CALLS} calls open on one connection"
            self.write(status_frame(call_id, grpc.StatusCode.RESOURCE_EXHAUSTED, detail))
            return
        call = _Call(call_id, self._taken, Window(header.window) if header.window else None)
        loop = asyncio.get_running_loop()
        call.task = loop.create_task(self._serve(call_id, call, header))
        if header.timeout > 0:  # as gRPC: past its deadline the server stops the call itself
            call.deadline = loop.call_later(header.timeout, self._expire, call_id)
        self._calls[call_id] = call

    async def _serve(self, call_id: int, call: _Call, header: native_pb2.CallHeader) -> None:
        try:
            await run_call(self, call_id, header, call.inbox, call.window)
        except asyncio.CancelledError:
            pass  # the client cancelled the call, it expired, or the connection went away
        finally:
            if self._calls.get(call_id) is call:
                self._end(call_id, stop=False)


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
