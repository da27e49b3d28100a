"""The `ServicerContext` a call on the native framing hands to the servicers.

The servicers are grpc.aio's, unchanged: they read the caller's metadata, peer and TLS
identity from here and end a call with `abort`. The context holds how the call ends (code,
details, trailing metadata) until the connection sends its STATUS frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import grpc
import grpc.aio

__all__ = ["CallEnd", "NativeContext"]

Metadata = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]


class CallEnd:
    """How a call ended: the status the connection reports."""

    __slots__ = ("code", "details", "trailing")

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK
        self.details = ""
        self.trailing: tuple[tuple[str, str | bytes], ...] = ()


class NativeContext(grpc.aio.ServicerContext):  # type: ignore[type-arg]
    """One call's context (see the module docstring)."""

    def __init__(
        self,
        metadata: Sequence[tuple[str, str | bytes]],
        peer: str,
        auth: Mapping[str, Iterable[bytes]],
        timeout: float,
        write: Callable[[Any], Awaitable[None]] | None = None,
        read: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._metadata = tuple(metadata)
        self._peer = peer
        self._auth = auth
        self._deadline = asyncio.get_running_loop().time() + timeout if timeout > 0 else None
        self._write = write
        self._read = read
        self.end = CallEnd()

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> NoReturn:
        """End the call with `code` (raises, as grpc.aio's does)."""
        if code is grpc.StatusCode.OK:
            raise ValueError("abort needs a status other than OK")
        self.end.code, self.end.details = code, details
        if trailing_metadata:
            self.end.trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError()

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        """End the call with a `grpc.Status`."""
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        """The status the call ends with when its handler returns."""
        self.end.code = code

    def set_details(self, details: str) -> None:
        """The details the call ends with."""
        self.end.details = details

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        """The trailing metadata the call ends with."""
        self.end.trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> grpc.aio.Metadata:
        """The trailing metadata set so far."""
        return grpc.aio.Metadata(*self.end.trailing)

    def code(self) -> grpc.StatusCode:
        """The status set so far."""
        return self.end.code

    def details(self) -> str:
        """The details set so far."""
        return self.end.details

    def invocation_metadata(self) -> grpc.aio.Metadata:
        """The metadata the client sent with the call."""
        return grpc.aio.Metadata(*self._metadata)

    def peer(self) -> str:
        """The client's address, as gRPC writes it (`ipv4:127.0.0.1:53412`)."""
        return self._peer

    def peer_identities(self) -> Iterable[bytes] | None:
        """The verified client certificate's common names, if any."""
        names = self._auth.get("x509_common_name")
        return list(names) if names else None

    def peer_identity_key(self) -> str | None:
        """The auth context key of `peer_identities`."""
        return "x509_common_name" if self._auth.get("x509_common_name") else None

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        """What TLS verified about the client (`x509_common_name` for mutual TLS)."""
        return self._auth

    # grpc documents None for a call without deadline; grpc-stubs says float.
    def time_remaining(self) -> float | None:  # type: ignore[override]
        """Seconds until the client's deadline (None: it set none)."""
        if self._deadline is None:
            return None
        return max(self._deadline - asyncio.get_running_loop().time(), 0.0)

    async def write(self, message: Any) -> None:
        """Send a response of a streaming call (the handler may also yield them)."""
        if self._write is None:
            raise RuntimeError("write() is only for calls that stream responses")
        await self._write(message)

    async def read(self) -> Any:
        """The next request of a call that streams requests (`grpc.aio.EOF` after the last)."""
        if self._read is None:
            raise RuntimeError("read() is only for calls that stream requests")
        return await self._read()

    async def send_initial_metadata(self, initial_metadata: Metadata) -> None:
        """Initial metadata has no frame of its own here; ignored."""

    def set_compression(self, compression: grpc.Compression) -> None:
        """Messages are never compressed here; ignored."""

    def disable_next_message_compression(self) -> None:
        """Messages are never compressed here; ignored."""
