"""The composition root: configuration -> store -> QueueService -> duties -> listeners.

This is the only module that knows every layer. It builds them from a `ShoalConfig`, starts
them in order (the duties are the maintenance loops and the scheduler runner; the listeners
gRPC and HTTP), and stops them in reverse: listeners first (workers are asked to drain and get
the grace period to finish or release their jobs), then the background duties, then the store
(which flushes what it holds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol, cast

from shoal._security import build_access, grpc_tls, native_ssl, server_ssl
from shoal.config import (
    ShoalConfig,
    StoreConfig,
    StoreUrl,
    parse_listen,
    parse_store_url,
)
from shoal.core.access import AccessService
from shoal.core.clock import Clock
from shoal.core.errors import ConfigError, ShoalError, StorageError, Unavailable
from shoal.core.identity import IdentityStore
from shoal.core.maintenance import Maintenance
from shoal.core.ports import Store
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService
from shoal.protocols.grpc import GrpcListener, GrpcOptions
from shoal.scheduler import SchedulerApi, SchedulerRunner, ScheduleService

if TYPE_CHECKING:
    # Imported where they start: a server without HTTP does not pay for FastAPI
    # (0.35 s and ~27 MiB of start-up), nor one without TCP for its codec.
    from shoal.protocols.http import HttpServer
    from shoal.protocols.tcp.server import TcpServer

__all__ = ["STORES", "Ready", "Server", "open_store", "redact"]

logger = logging.getLogger(__name__)

StoreFactory = Callable[[StoreUrl, StoreConfig], Store]


def _memory(url: StoreUrl, config: StoreConfig) -> Store:
    from shoal.stores.memory import MemoryStore

    return MemoryStore()


def _sqlite(url: StoreUrl, config: StoreConfig) -> Store:
    from shoal.stores.sqlite import SqliteStore

    # Lone small writes on the loop: a thread hop less for a lone producer (see SqliteStore).
    store: Store = SqliteStore(url.path, synchronous=config.synchronous, inline_writes=True)
    return store


def _postgres(url: StoreUrl, config: StoreConfig) -> Store:
    from shoal.stores.postgres import PostgresOptions, PostgresStore

    store: Store = PostgresStore(url.url, PostgresOptions(migrate=config.migrate))
    return store


#: The one string seam: a store URL's scheme picks the backend (imported only when used).
STORES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def redact(url: str) -> str:
    """The URL with any password hidden, for logs and the ready line."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)


async def open_store(config: StoreConfig) -> Store:
    """Build and open the configured store; `StorageError` naming the URL when it cannot."""
    url = parse_store_url(config.url)
    store = STORES[url.scheme](url, config)
    try:
        await store.open()
    except ShoalError as exc:
        raise StorageError(f"cannot open store {redact(config.url)}: {exc.message}") from exc
    except (OSError, RuntimeError) as exc:
        raise StorageError(f"cannot open store {redact(config.url)}: {exc}") from exc
    return store


@dataclass(frozen=True, slots=True)
class Ready:
    """Where a started server listens (an empty address: that listener is off)."""

    grpc: str
    store: str
    http: str = ""
    tcp: str = ""
    native: str = ""

    def line(self) -> str:
        """The one line announcing readiness (scripts and tests parse it)."""
        listeners = "".join(
            f"{name}={address} "
            for name, address in (
                ("grpc", self.grpc),
                ("native", self.native),
                ("http", self.http),
                ("tcp", self.tcp),
            )
            if address
        )
        return f"shoal ready {listeners}store={self.store}"


class _Duty(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class Server:
    """One shoal server process: every part built from one configuration."""

    def __init__(self, config: ShoalConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock
        self.store: Store | None = None
        self.service: QueueService | None = None
        self._duties: list[tuple[_Duty, asyncio.Task[None]]] = []
        self._grpc: GrpcListener | None = None
        self._http: HttpServer | None = None
        self._tcp: TcpServer | None = None
        self._ready: Ready | None = None
        #: Authentication and the admin operations on identities (built at start).
        self.access: AccessService | None = None

    async def start(self) -> Ready:
        """Open the store and start the duties and listeners.

        Raises:
            ConfigError: a listener is misconfigured or not available.
            StorageError: the store cannot be opened.
            Unavailable: a listener cannot bind its address.
        """
        config = self.config
        server = config.server
        if not (
            server.grpc_listen or server.native_listen or server.http_listen or server.tcp_listen
        ):
            raise ConfigError(
                "server.grpc_listen, native_listen, http_listen and tcp_listen are all off; set one"
            )
        self.store = await open_store(config.store)
        try:
            service = self.service = QueueService(
                self.store, config.service_settings(), clock=self.clock
            )
            identities = cast(IdentityStore, self.store)
            self.access = await build_access(config, identities, service)
            self._start_duty(
                Maintenance(
                    service,
                    reap_interval=config.service.reap_interval,
                    purges=self._identity_purges(config),
                )
            )
            self._start_duty(SchedulerRunner(service))
            schedules = SchedulerApi(ScheduleService(service))
            for declared in config.schedules.declared:  # shoal.toml's: created or updated
                await schedules.put(declared)
            grpc = await self._start_grpc(service, schedules)
            native = await self._start_native(service, schedules)
            tcp = await self._start_tcp(service, schedules)
            ready = Ready(
                grpc=grpc,
                native=native,
                http=await self._start_http(service, schedules),
                tcp=tcp,
                store=redact(config.store.url),
            )
        except BaseException:
            await self.stop()
            raise
        self._ready = ready
        logger.info(ready.line(), extra={"event": "server.ready"})
        return ready

    def _start_duty(self, duty: _Duty) -> None:
        self._duties.append((duty, asyncio.create_task(duty.run())))

    def _identity_purges(self, config: ShoalConfig) -> list[Callable[[int], Awaitable[int]]]:
        """The audit log's retention, when `auth.audit_retention` is set."""
        if self.access is None or not config.auth.audit_retention:
            return []
        return [partial(self.access.purge_audit, config.auth.audit_retention)]

    def _grpc_listener(self, service: QueueService, schedules: ScheduleApi) -> GrpcListener:
        # One listener object serves both gRPC and the native framing: one set of servicers.
        if self._grpc is None:
            options = GrpcOptions(
                max_message_bytes=self.config.server.max_message_bytes, tls=grpc_tls(self.config)
            )
            self._grpc = GrpcListener(service, options, schedules=schedules, access=self.access)
        return self._grpc

    async def _start_grpc(self, service: QueueService, schedules: ScheduleApi) -> str:
        if not self.config.server.grpc_listen:
            return ""
        address = parse_listen(self.config.server.grpc_listen)
        return await self._grpc_listener(service, schedules).start(address.host, address.port)

    async def _start_native(self, service: QueueService, schedules: ScheduleApi) -> str:
        if not self.config.server.native_listen:
            return ""
        address = parse_listen(self.config.server.native_listen)
        listener = self._grpc_listener(service, schedules)
        return await listener.start_native(address.host, address.port, native_ssl(self.config))

    async def _start_http(self, service: QueueService, schedules: ScheduleApi) -> str:
        if not self.config.server.http_listen:
            return ""
        from shoal.protocols.http import HttpSettings, create_app, serve_http
        from shoal.protocols.tcp.gateway import gateway_route

        address = parse_listen(self.config.server.http_listen)
        settings = HttpSettings(
            session_ttl=self.config.auth.session_ttl,
            max_body_bytes=self.config.server.max_message_bytes,
        )
        app = create_app(service, settings=settings, schedules=schedules, access=self.access)
        if self._tcp is not None:
            # Jobatator's HTTP gateway runs TCP commands; it shares the TCP listener's hub.
            # First, so that the dashboard's catch-all mount does not shadow it.
            app.router.routes.insert(0, gateway_route(self._tcp.hub))
        try:
            tls = self.config.tls.pair("http")
            self._http = await serve_http(app, address.host, address.port, tls=tls)
        except OSError as exc:
            where = self.config.server.http_listen
            raise Unavailable(f"cannot listen on {where} (HTTP): {exc.strerror or exc}") from exc
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"{host}:{self._http.port}"

    async def _start_tcp(self, service: QueueService, schedules: ScheduleApi) -> str:
        if not self.config.server.tcp_listen:
            return ""
        from shoal.protocols.tcp.server import TcpSettings, serve_tcp

        address = parse_listen(self.config.server.tcp_listen)
        assert self.access is not None
        ssl = server_ssl(self.config, "tcp")
        settings = TcpSettings(**dataclasses.asdict(self.config.tcp))
        try:
            self._tcp = await serve_tcp(
                service, self.access, schedules, address.host, address.port, settings, ssl
            )
        except OSError as exc:
            where = self.config.server.tcp_listen
            raise Unavailable(f"cannot listen on {where} (TCP): {exc.strerror or exc}") from exc
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"{host}:{self._tcp.port}"

    async def stop(self) -> None:
        """Stop listeners (workers drain within the grace period), duties, then the store."""
        grace = self.config.server.grace_period
        tcp, self._tcp = self._tcp, None
        # TCP and gRPC workers drain at the same time: one grace period, not one per listener.
        tcp_closed = asyncio.ensure_future(tcp.close(grace)) if tcp is not None else None
        try:
            if self._http is not None:
                await self._http.stop()
                self._http = None
            if self._grpc is not None:
                await self._grpc.stop(grace)
                self._grpc = None
        finally:
            if tcp_closed is not None:
                await tcp_closed
        for duty, _ in self._duties:
            duty.stop()
        await asyncio.gather(*(task for _, task in self._duties), return_exceptions=True)
        self._duties.clear()
        if self.service is not None:
            await self.service.finish_broadcasts()
            self.service.events.close()
        if self.store is not None:
            try:
                await self.store.close()
            except ShoalError:
                logger.exception("closing the store failed", extra={"event": "server.error"})
            self.store = None
        if self._ready is not None:
            logger.info("shoal stopped", extra={"event": "server.stopped"})
            self._ready = None

    async def serve(self, stop: asyncio.Event, on_ready: Callable[[Ready], None]) -> None:
        """Start, report readiness, run until `stop` is set, then stop gracefully."""
        ready = await self.start()
        try:
            on_ready(ready)
            await stop.wait()
        finally:
            await self.stop()
