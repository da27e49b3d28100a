"""The native listener: the gRPC listener's servicers on the native framing.

`NativeServer` stands in for a `grpc.aio.Server` where the generated `add_*_to_server`
functions register handlers, so the very servicers of the gRPC port are served here, behind
the same interceptors. Only the transport differs: frames on a TCP (or TLS) stream instead of
HTTP/2, which a Python client pays for several times over per call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import grpc
import grpc.aio

from shoal.core.errors import Unavailable
from shoal.protocols.grpc.native._connection import NativeConnection

__all__ = ["NativeServer"]

logger = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str | bytes], ...]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]


class _CallDetails(NamedTuple):
    """`grpc.HandlerCallDetails` as interceptors read it."""

    method: str
    invocation_metadata: Metadata


class NativeServer:
    """Handlers by method, the interceptor chain, and the listening socket."""

    def __init__(
        self,
        interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]],
        max_body: int,
    ) -> None:
        self.max_body = max_body
        #: Set when the server stops: new calls are refused as UNAVAILABLE.
        self.closing = False
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._generic: list[grpc.GenericRpcHandler[Any, Any]] = []
        chain: Continuation = self._lookup
        for interceptor in reversed(interceptors):
            chain = functools.partial(interceptor.intercept_service, chain)
        self._chain = chain
        self._connections: set[NativeConnection] = set()
        self._server: asyncio.Server | None = None

    # What the generated add_*Servicer_to_server functions call on a grpc server:

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        """Serve what these handlers resolve (after the registered methods)."""
        self._generic.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Serve these methods of `service`."""
        for name, handler in handlers.items():
            self._handlers[f"/{service}/{name}"] = handler

    async def _lookup(self, details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        handler = self._handlers.get(method)
        if handler is not None:
            return handler
        for generic in self._generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    async def resolve(self, method: str, metadata: Metadata) -> Any:
        """The handler of `method` as the interceptors wrap it for this call; None if unknown."""
        return await self._chain(_CallDetails(method, metadata))  # type: ignore[arg-type]

    def opened(self, connection: NativeConnection) -> None:
        """A connection is up (over TLS: its handshake succeeded)."""
        self._connections.add(connection)

    def forget(self, connection: NativeConnection) -> None:
        """A connection closed."""
        self._connections.discard(connection)

    def _connection(self) -> NativeConnection:
        # Not kept yet: when a TLS handshake fails (a port probe, a clear-text client) asyncio
        # never calls connection_made nor connection_lost, so only `opened` may add it.
        return NativeConnection(self)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen; the bound port. `Unavailable` if the address cannot be bound."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._connection, host, port, ssl=tls, reuse_address=True
            )
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise Unavailable(f"cannot listen on {where} (native): {exc.strerror or exc}") from exc
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    @property
    def calls(self) -> int:
        """Calls running now, over every connection."""
        return sum(len(connection.tasks) for connection in self._connections)

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let running ones end within `grace`, then cancel and hang up."""
        self.closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.calls and loop.time() < deadline:
            await asyncio.sleep(0.02)
        tasks = [task for connection in self._connections for task in connection.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in list(self._connections):
            connection.close()
        if server is not None:
            await server.wait_closed()
