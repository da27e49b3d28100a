"""The composition root: configuration -> store -> QueueService -> maintenance -> listeners.

This is the only module that knows every layer. It builds them from a `ShoalConfig`, starts
them in order, and stops them in reverse: listeners first (workers are asked to drain and get
the grace period to finish or release their jobs), then the background duties, then the store
(which flushes what it holds).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from shoal.config import (
    ServerConfig,
    ShoalConfig,
    StoreConfig,
    StoreUrl,
    parse_listen,
    parse_store_url,
)
from shoal.core.clock import Clock
from shoal.core.errors import ConfigError, ShoalError, StorageError
from shoal.core.maintenance import Maintenance
from shoal.core.ports import Store
from shoal.core.service import QueueService
from shoal.protocols.grpc import GrpcListener, GrpcOptions

__all__ = ["STORES", "Ready", "Server", "open_store", "redact"]

logger = logging.getLogger(__name__)

StoreFactory = Callable[[StoreUrl, StoreConfig], Store]


def _memory(url: StoreUrl, config: StoreConfig) -> Store:
    from shoal.stores.memory import MemoryStore

    return MemoryStore()


def _sqlite(url: StoreUrl, config: StoreConfig) -> Store:
    from shoal.stores.sqlite import SqliteStore

    store: Store = SqliteStore(url.path, synchronous=config.synchronous)
    return store


def _postgres(url: StoreUrl, config: StoreConfig) -> Store:
    from shoal.stores.postgres import PostgresStore

    store: Store = PostgresStore(url.url)
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
    """Where a started server listens."""

    grpc: str
    store: str

    def line(self) -> str:
        """The one line announcing readiness (scripts and tests parse it)."""
        return f"shoal ready grpc={self.grpc} store={self.store}"


def _refuse_unbuilt(server: ServerConfig) -> None:
    for name, surface in (("http_listen", "HTTP"), ("tcp_listen", "TCP")):
        if getattr(server, name):
            raise ConfigError(
                f"server.{name}: the {surface} surface is not available in this build yet; "
                "leave it unset"
            )


class Server:
    """One shoal server process: every part built from one configuration."""

    def __init__(self, config: ShoalConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock
        self.store: Store | None = None
        self.service: QueueService | None = None
        self._maintenance: Maintenance | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._grpc: GrpcListener | None = None
        self._ready: Ready | None = None

    async def start(self) -> Ready:
        """Open the store and start the duties and listeners.

        Raises:
            ConfigError: a listener is misconfigured or not available.
            StorageError: the store cannot be opened.
            Unavailable: a listener cannot bind its address.
        """
        config = self.config
        _refuse_unbuilt(config.server)
        grpc_address = (
            parse_listen(config.server.grpc_listen) if config.server.grpc_listen else None
        )
        if grpc_address is None:
            raise ConfigError("server.grpc_listen: the gRPC listener is the only one; set it")
        self.store = await open_store(config.store)
        try:
            self.service = QueueService(self.store, config.service_settings(), clock=self.clock)
            self._maintenance = Maintenance(
                self.service, reap_interval=config.service.reap_interval
            )
            self._maintenance_task = asyncio.create_task(self._maintenance.run())
            options = GrpcOptions(max_message_bytes=config.server.max_message_bytes)
            self._grpc = GrpcListener(self.service, options)
            bound = await self._grpc.start(grpc_address.host, grpc_address.port)
        except BaseException:
            await self.stop()
            raise
        ready = self._ready = Ready(grpc=bound, store=redact(config.store.url))
        logger.info(ready.line(), extra={"event": "server.ready"})
        return ready

    async def stop(self) -> None:
        """Stop listeners (workers drain within the grace period), duties, then the store."""
        if self._grpc is not None:
            await self._grpc.stop(self.config.server.grace_period)
            self._grpc = None
        if self._maintenance is not None and self._maintenance_task is not None:
            self._maintenance.stop()
            await asyncio.gather(self._maintenance_task, return_exceptions=True)
            self._maintenance = self._maintenance_task = None
        if self.service is not None:
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
