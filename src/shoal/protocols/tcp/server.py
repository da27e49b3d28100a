"""The asyncio listener of the TCP protocol: bytes to the parser, commands to a session,
replies back. Everything else lives in the sans-IO codec and in `Session`.

Per connection: a `Parser` frames the bytes; a partial line idle for `idle_flush` is offered
to `Parser.flush_idle` (the CLI's `AUTH u p ` without newline); a fatal parse error (a line
over `max_line`, a broken array) is answered and closes the connection; a connection that
has not passed `AUTH` is closed after `auth_timeout` without input, while an authenticated
one (a subscribed worker waiting for jobs, above all) never times out. When a connection
ends, its session releases its jobs to the other workers (`QueueService.worker_gone`).

`close(grace)` stops as the gRPC listener does: no new connection, no new job pushed; a
connection holding a job has up to `grace` seconds to report it (`done` or `errored`) and
is closed once it has; the others are closed at once, and whatever is still held when the
grace period ends is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module

from shoal.core.access import AccessService
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService
from shoal.protocols.tcp._hub import Hub, TcpSettings
from shoal.protocols.tcp.codec import Event, Parser
from shoal.protocols.tcp.commands import Command, ErrorCode
from shoal.protocols.tcp.replies import ErrorReply, encode
from shoal.protocols.tcp.session import Session

__all__ = ["Hub", "TcpServer", "TcpSettings", "serve_tcp"]

logger = logging.getLogger(__name__)
_READ_SIZE = 64 * 1024


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer or "")


class TcpServer:
    """A running TCP listener; `close(grace)` stops it (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._stopping = False

    @property
    def stop_requested(self) -> asyncio.Event:
        """Set when a client sent STOP_SERVER (test mode): the owner should stop the server."""
        return self.hub.stop_requested

    async def _start(self, host: str, port: int, ssl: ssl_module.SSLContext | None) -> None:
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=ssl, limit=_READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.hub.host, self.hub.port = host, self.port
        self.hub.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:  # accepted just before the listener closed: it would not be stopped
            writer.close()
            return
        if len(self._connections) >= self.hub.settings.max_connections:
            writer.write(encode(ErrorReply(ErrorCode.RESOURCE_EXHAUSTED)))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer

        def push(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        session = Session(self.hub, _peer(writer), push, writer.close, writer.drain)
        try:
            await self._serve(session, reader, writer)
        except (ConnectionError, OSError):
            pass  # the peer went away; its jobs are released below
        finally:
            try:
                await session.close()
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()
            finally:
                # Only now: `close()` waits for every connection to have released its jobs.
                self._connections.pop(task, None)

    async def _serve(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        settings = self.hub.settings
        parser = Parser(settings.max_line)
        loop = asyncio.get_running_loop()
        last_input = loop.time()
        flushed = False  # the idle rule was already tried on the partial line held
        while not session.closing:
            timeout: float | None = None
            if parser.has_partial and not flushed:
                timeout = settings.idle_flush
            elif not session.authenticated:
                timeout = max(settings.auth_timeout - (loop.time() - last_input), 0.0)
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), timeout)
            except TimeoutError:
                if parser.has_partial and not flushed:
                    flushed = True
                    events: list[Event] = parser.flush_idle()
                else:
                    logger.info(
                        "closing an unauthenticated idle TCP connection from %s",
                        session.addr,
                        extra={"event": "tcp.auth_timeout", "peer": session.addr},
                    )
                    return
            else:
                if not data:
                    return
                last_input, flushed = loop.time(), False
                events = parser.feed(data)
            commands: list[Command] = []
            for event in [*events, None]:  # None: the end, run what is collected
                if isinstance(event, Command):
                    commands.append(event)
                    continue
                if commands:
                    await session.respond(commands)
                    commands = []
                if session.closing or event is None:
                    break
                writer.write(encode(event.reply))
                if event.close:
                    logger.info(
                        "closing a TCP connection from %s: %s",
                        session.addr,
                        event.code,
                        extra={"event": "tcp.protocol_error", "peer": session.addr},
                    )
                    await writer.drain()
                    return
            await writer.drain()
        if session.stop_server:
            self.hub.stop_requested.set()

    async def close(self, grace: float = 0.0) -> None:
        """Stop listening and pushing jobs; give the connections that hold one up to `grace`
        seconds to report it, then close every connection (releasing what is still held) and
        stop the hub.
        """
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for session in list(self.hub.sessions.values()):
            session.worker.stop()  # one holding no job hangs up now, the others once done
        if self._connections and grace > 0:
            await asyncio.wait(list(self._connections), timeout=grace)
        for writer in list(self._connections.values()):
            writer.close()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self.hub.close()


async def serve_tcp(
    service: QueueService,
    access: AccessService,
    schedules: ScheduleApi,
    host: str = "127.0.0.1",
    port: int = 8962,
    settings: TcpSettings | None = None,
    ssl: ssl_module.SSLContext | None = None,
) -> TcpServer:
    """Listen for the TCP protocol on `host:port` (0 picks a free port); TLS with `ssl`.

    Returns once listening. The server's `hub` is what a `/gateway` app should share
    (`create_gateway_app(..., hub=server.hub)`), so both see the same sessions and queues.
    """
    server = TcpServer(Hub(service, access, schedules, settings))
    await server._start(host, port, ssl)
    logger.info(
        "TCP listening on %s:%d",
        host,
        server.port,
        extra={"event": "tcp.listening", "port": server.port, "tls": ssl is not None},
    )
    return server
