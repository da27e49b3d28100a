from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from shoal.core.errors import ConfigError, StorageError
from shoal.core.ids import new_token
from shoal.core.ports import BroadcastListener, ReadyListener
from shoal.stores.postgres import _migrate
from shoal.stores.postgres._base import DRIVER_ERRORS, Conn
from shoal.stores.postgres._catalog import Catalog
from shoal.stores.postgres._identity import Identity
from shoal.stores.postgres._jobs import JobLeases
from shoal.stores.postgres._leader import LeaderLeases
from shoal.stores.postgres._listen import ReadyChannel
from shoal.stores.postgres._steer import JobSteering

logger = logging.getLogger(__name__)

_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """How a `PostgresStore` connects.

    Besides the pool, the store keeps one connection for LISTEN and one per leader-lease holder.
    """

    #: Apply missing migrations at `open()`; when False, `open()` refuses an outdated schema
    #: (run `shoal db migrate` first), which suits deployments that migrate as a separate step.
    migrate: bool = True
    min_connections: int = 1
    max_connections: int = 10
    #: Seconds any one statement may take before it is cancelled (None: no limit).
    command_timeout: float | None = 60.0
    application_name: str = "shoal"
    #: Prepared statements kept per pooled connection; 0 behind a transaction-pooling proxy.
    statement_cache_size: int = 100


class PostgresStore(JobLeases, JobSteering, Catalog, Identity):
    """The `Store` on PostgreSQL: several processes (server replicas) may share one database.

    Claims lock ready rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait for
    nor share a job; commits that make jobs ready send a NOTIFY that wakes the claimers of every
    other process; leader leases are fenced rows backed by advisory locks (see `LeaderLeases`).
    """

    supports_notify = True

    def __init__(self, url: str, options: PostgresOptions | None = None) -> None:
        """Remember where to connect; nothing happens before `open()`.

        Args:
            url: ``postgresql://user:password@host:port/database`` (libpq URL syntax).
            options: Pool size, migration at open, timeouts.
        """
        if urlsplit(url).scheme not in _SCHEMES:
            raise ConfigError(f"not a PostgreSQL URL (postgresql://...): {url.split('@')[-1]!r}")
        super().__init__(origin=new_token())
        self.url = url
        self.options = options or PostgresOptions()
        self._leaders = LeaderLeases(self._connect)
        self._channel = ReadyChannel(self._connect, self._origin)

    async def _connect(self) -> Conn:
        """A connection outside the pool (LISTEN, leader leases): it lives as long as its use."""
        conn: Conn = await asyncpg.connect(
            self.url,
            command_timeout=self.options.command_timeout,
            server_settings={"application_name": self.options.application_name},
        )
        return conn

    async def open(self) -> None:
        """Connect the pool, apply (or check) migrations and start listening for NOTIFY."""
        if not self._closed:
            return
        options = self.options
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=min(options.min_connections, options.max_connections),
                max_size=options.max_connections,
                command_timeout=options.command_timeout,
                statement_cache_size=options.statement_cache_size,
                server_settings={"application_name": options.application_name},
            )
            async with self._pool.acquire() as conn:
                await self._check_schema(conn)
            self._closed = False
            await self._channel.start()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, DRIVER_ERRORS):
                raise StorageError(f"cannot open PostgreSQL store: {exc}") from exc
            raise
        logger.info("PostgreSQL store open", extra={"event": "store.opened", "store": "postgres"})

    async def _check_schema(self, conn: Conn) -> None:
        if self.options.migrate:
            await _migrate.apply(conn)
            return
        missing = await _migrate.pending(conn)
        if missing:
            raise StorageError(
                f"the database lacks migrations {', '.join(missing)}; run `shoal db migrate`"
            )

    async def close(self) -> None:
        """Stop listening, give up leader leases and close every connection."""
        self._closed = True
        await self._completions.wait_idle()
        await self._channel.stop()
        await self._leaders.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10.0)
            except (*DRIVER_ERRORS, TimeoutError):
                pool.terminate()

    def set_ready_listener(self, listener: ReadyListener) -> None:
        """Tell `listener` when another process makes jobs ready, and every queue after the
        LISTEN connection came back (the notices sent while it was down are lost).
        """
        self._channel.set_listener(listener)

    def set_broadcast_listener(self, listener: BroadcastListener) -> None:
        """Call `listener(event)` for each event another process broadcasts."""
        self._channel.set_event_listener(listener)

    async def try_acquire_leader(self, name: str, holder: str, ttl: float, now: float) -> bool:
        self._live_pool()
        return await self._leaders.try_acquire(name, holder, ttl, now)

    async def release_leader(self, name: str, holder: str) -> None:
        self._live_pool()
        await self._leaders.release(name, holder)
