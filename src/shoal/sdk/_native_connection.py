"""The client side of one native-framing connection: frames to and from the calls it carries,
and the TLS context of a `shoals://` channel. `NativeChannel` (`shoal.sdk._native`) dials it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from typing import Any

import grpc

from shoal.protocols.grpc.native.frames import FrameDecoder, FramingError, Kind, encode
from shoal.protocols.grpc.native.writes import FramedProtocol
from shoal.sdk._native_calls import NativeCall

__all__ = ["MAX_RESPONSE", "NativeConnection", "client_ssl", "retrieve"]

logger = logging.getLogger(__name__)

#: The largest response body accepted (a larger one fails its call, RESOURCE_EXHAUSTED).
MAX_RESPONSE = 64 * 1024 * 1024
#: Seconds to wait for a connection being closed to be gone.
_CLOSE_WAIT = 1.0
_MAX_CALL_ID = 2**32 - 1


class NativeConnection(FramedProtocol):
    """The client side of one connection: frames to and from the calls it carries."""

    def __init__(self, on_lost: Callable[[NativeConnection], None]) -> None:
        super().__init__()
        self._on_lost = on_lost
        self._decoder = FrameDecoder(MAX_RESPONSE)
        self._calls: dict[int, NativeCall] = {}
        self._next_id = 1
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        # a dial that gave up (or a channel closed meanwhile) leaves the failure unread
        self.ready.add_done_callback(retrieve)
        #: Resolved once the transport is closed (TLS's close_notify exchange included).
        self.closed: asyncio.Future[None] = loop.create_future()

    @property
    def alive(self) -> bool:
        """Connected, and the server answered with its preface."""
        return self._transport is not None and self.ready.done() and not self.ready.exception()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("the server hung up"))
        if not self.closed.done():
            self.closed.set_result(None)
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call.lost(f"connection lost: {exc}" if exc else "connection lost")
        self._on_lost(self)

    async def hang_up(self) -> None:
        """Hang up and wait, briefly, until the transport is closed: under TLS, `close()`
        only starts the close_notify exchange, and a loop closed before it ends leaves the
        socket underneath to the garbage collector.
        """
        self.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), _CLOSE_WAIT)

    def forget(self, call_id: int) -> None:
        """The call is over."""
        self._calls.pop(call_id, None)

    def open(self, call: NativeCall, request: bytes | None) -> None:
        """Send `call`'s CALL frame, and its request if it has exactly one; end it at once if
        the connection is gone (its table was emptied when it was lost: nothing else would).
        """
        if not self.alive:
            call.lost("connection lost")
            return
        call_id = self._next_id
        while call_id in self._calls:
            call_id = call_id % _MAX_CALL_ID + 1
        self._next_id = call_id % _MAX_CALL_ID + 1
        self._calls[call_id] = call
        call.opened(self, call_id)
        frames = encode(Kind.CALL, call_id, call.header)
        if request is not None:
            frames += encode(Kind.MESSAGE, call_id, request)
        self.write(frames)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FramingError as exc:
            logger.warning("the server broke the native framing: %s", exc)
            self.close()
            return
        if not self.ready.done() and self._decoder.preface_seen:
            self.ready.set_result(None)
        calls = self._calls
        for kind, call_id, body in frames:
            call = calls.get(call_id)
            if call is None:
                continue  # a call cancelled here: what the server still sent is dropped
            if kind == Kind.MESSAGE:
                call.message(body)
            elif kind == Kind.STATUS:
                call.status(body)
            elif kind == Kind.OVERSIZED:
                detail = f"a response was larger than the client's limit of {MAX_RESPONSE} bytes"
                call.refuse(grpc.StatusCode.RESOURCE_EXHAUSTED, detail)
            else:
                self.close()
                return


def client_ssl(ca: bytes | None, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    """The TLS context of a `shoals://` channel: the server checked against `ca` (the system's
    roots when None), and `cert`/`key` presented for mutual TLS.
    """
    context = ssl.create_default_context(cadata=ca.decode() if ca else None)
    if cert is not None or key is not None:
        if cert is None or key is None:
            raise ValueError("mutual TLS needs both a certificate and its key")
        # ssl loads a certificate chain from files only: a private directory, gone at once.
        with tempfile.TemporaryDirectory(prefix="shoal-tls-") as directory:
            cert_path, key_path = os.path.join(directory, "c.pem"), os.path.join(directory, "k.pem")
            for path, data in ((cert_path, cert), (key_path, key)):
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as file:
                    file.write(data)
            context.load_cert_chain(cert_path, key_path)
    return context


def retrieve(future: asyncio.Future[Any]) -> None:
    """Read a finished future's exception, so that asyncio does not log it as never read."""
    if not future.cancelled():
        future.exception()
