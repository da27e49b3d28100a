from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias, TypeVar

import asyncpg

from shoal.core.errors import StorageError, Unavailable
from shoal.core.events import Event

T = TypeVar("T")
Conn: TypeAlias = asyncpg.Connection

logger = logging.getLogger(__name__)

#: The NOTIFY channel that says "jobs became ready in this queue".
READY_CHANNEL = "shoal_ready"
#: The NOTIFY channel of the events one replica tells the others (`Store.broadcast`).
EVENTS_CHANNEL = "shoal_events"
#: Errors after which the whole transaction is worth running again (nothing was changed).
_RETRY = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_ATTEMPTS = 5
#: Driver and network errors, wrapped once into `StorageError` at this boundary.
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def ready_payload(origin: str, namespace: str, queue: str) -> str:
    """The NOTIFY payload for one queue; `origin` lets a store ignore its own notices."""
    return json.dumps([origin, namespace, queue], separators=(",", ":"))


def event_payload(origin: str, event: Event) -> str:
    """The NOTIFY payload of a broadcast event (a few hundred bytes: NOTIFY takes 8,000)."""
    return json.dumps([origin, dataclasses.asdict(event)], separators=(",", ":"))


def parse_event(payload: str) -> tuple[str, Event] | None:
    """(origin, event) of a payload, or None for one shoal did not write."""
    try:
        origin, fields = json.loads(payload)
        event = Event(**fields)
    except (ValueError, TypeError):
        return None
    if not isinstance(origin, str) or not isinstance(event.kind, str):
        return None
    return origin, event


def parse_ready(payload: str) -> tuple[str, str, str] | None:
    """(origin, namespace, queue) of a payload, or None for one shoal did not write."""
    try:
        origin, namespace, queue = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not all(isinstance(part, str) for part in (origin, namespace, queue)):
        return None
    return origin, namespace, queue


def key_lock(namespace: str, key: str) -> int:
    """A signed 64-bit advisory lock id for one idempotency key of one namespace: held by
    whoever checks who holds the key and then stores a job with it (enqueue, retry).
    """
    digest = hashlib.blake2b(f"{namespace}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def row_count(status: str) -> int:
    """The row count of a command status such as ``DELETE 12``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Base:
    """The pool, and how every operation reaches it: errors wrapped, deadlocks retried."""

    def __init__(self, origin: str) -> None:
        self._pool: asyncpg.Pool | None = None
        self._closed = True
        self._origin = origin

    def _live_pool(self) -> asyncpg.Pool:
        if self._closed or self._pool is None:
            raise Unavailable("store is closed")
        return self._pool

    async def _tx(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `work` in one transaction; again from the start after a deadlock."""
        pool = self._live_pool()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    return await work(conn)
            except _RETRY as exc:
                if attempt == _ATTEMPTS:
                    raise StorageError(f"transaction kept conflicting: {exc}") from exc
                logger.debug("retrying after %s", exc, extra={"event": "store.retry"})
            except DRIVER_ERRORS as exc:
                raise self._wrap(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _one(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `work` (a single statement, atomic by itself) outside an explicit transaction."""
        pool = self._live_pool()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with pool.acquire() as conn:
                    return await work(conn)
            except _RETRY as exc:
                if attempt == _ATTEMPTS:
                    raise StorageError(f"statement kept conflicting: {exc}") from exc
            except DRIVER_ERRORS as exc:
                raise self._wrap(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._one(lambda conn: conn.fetch(sql, *args))
        return rows

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._one(lambda conn: conn.fetchrow(sql, *args))
        return row

    async def _execute(self, sql: str, *args: Any) -> str:
        status: str = await self._one(lambda conn: conn.execute(sql, *args))
        return status

    def _wrap(self, exc: BaseException) -> Exception:
        if self._closed:
            return Unavailable("store is closed")
        return StorageError(f"PostgreSQL: {type(exc).__name__}: {exc}")

    async def broadcast(self, event: Event) -> None:
        """NOTIFY the other replicas of `event` (`Store.broadcast`)."""
        await self._execute(
            "SELECT pg_notify($1, $2)", EVENTS_CHANNEL, event_payload(self._origin, event)
        )

    async def _notify_ready(self, conn: Conn, queues: Iterable[tuple[str, str]]) -> None:
        """Tell every listening process (at commit) that these queues have ready jobs."""
        payloads = [ready_payload(self._origin, ns, q) for ns, q in dict.fromkeys(queues)]
        if payloads:
            await conn.execute(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", READY_CHANNEL, payloads
            )
