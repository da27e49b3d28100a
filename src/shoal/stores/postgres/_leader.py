from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shoal.core.errors import StorageError
from shoal.stores.postgres._base import DRIVER_ERRORS, Conn

logger = logging.getLogger(__name__)

#: First half of the two-part advisory lock id of a leader lease ("SHLD").
LEADER_LOCK_CLASS = 0x53484C44


@dataclass
class _Holder:
    conn: Conn | None = None
    #: Lease names whose advisory lock this holder's session holds.
    locked: set[str] = field(default_factory=set)
    mutex: asyncio.Lock = field(default_factory=asyncio.Lock)


class LeaderLeases:
    """Leader leases that survive nothing of their holder.

    The shoal_leaders row says who leads until when; a holder that stops renewing loses the
    lease once its TTL has passed. Each holder also takes the lease's session advisory lock on a
    connection of its own, and marks the row `locked`: PostgreSQL releases that lock the moment
    the holder's connection ends (its process died, even by SIGKILL), so a contender that finds
    a `locked` row's lock free takes the lease at once instead of waiting for the TTL.
    """

    def __init__(self, connect: Callable[[], Awaitable[Conn]]) -> None:
        self._connect = connect
        self._holders: dict[str, _Holder] = {}

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> bool:
        state = self._holders.setdefault(holder, _Holder())
        async with state.mutex:
            # A second try on a new connection: the old one may have died quietly (server
            # restart, idle timeout), which is only seen when it is used.
            for attempt in (1, 2):
                fresh = state.conn is None or state.conn.is_closed()
                try:
                    if fresh:
                        state.locked.clear()  # a closed session holds no lock
                        state.conn = await self._connect()
                    assert state.conn is not None
                    return await self._acquire(state, state.conn, name, holder, ttl, now)
                except DRIVER_ERRORS as exc:
                    await self._drop(state)
                    if fresh or attempt == 2:
                        raise StorageError(f"PostgreSQL: leader lease {name!r}: {exc}") from exc
            raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(
        self, state: _Holder, conn: Conn, name: str, holder: str, ttl: float, now: float
    ) -> bool:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO shoal_leaders (name, holder, expires_at) VALUES ($1, '', 0)"
                " ON CONFLICT DO NOTHING",
                name,
            )
            row = await conn.fetchrow(
                "SELECT holder, expires_at, locked FROM shoal_leaders WHERE name = $1 FOR UPDATE",
                name,
            )
            assert row is not None
            if row["holder"] != holder:
                if name in state.locked:
                    # We lost the lease by its TTL while our session still held the lock.
                    await self._unlock(conn, state, name)
                    if row["expires_at"] > now:
                        return False
                elif row["expires_at"] > now:
                    if not row["locked"] or not await self._try_lock(conn, state, name):
                        return False
                    logger.info(
                        "leader %s of %r is gone; %s takes over",
                        row["holder"],
                        name,
                        holder,
                        extra={"event": "leader.taken_over", "lease": name, "holder": holder},
                    )
            if name not in state.locked:
                await self._try_lock(conn, state, name)
            await conn.execute(
                "UPDATE shoal_leaders SET holder = $2, expires_at = $3, locked = $4"
                " WHERE name = $1",
                name,
                holder,
                now + ttl,
                name in state.locked,
            )
        return True

    async def _try_lock(self, conn: Conn, state: _Holder, name: str) -> bool:
        got = bool(
            await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", LEADER_LOCK_CLASS, name
            )
        )
        if got:
            state.locked.add(name)
        return got

    async def _unlock(self, conn: Conn, state: _Holder, name: str) -> None:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LEADER_LOCK_CLASS, name)
        state.locked.discard(name)

    async def release(self, name: str, holder: str) -> None:
        state = self._holders.get(holder)
        if state is None:
            return
        async with state.mutex:
            try:
                if state.conn is None or state.conn.is_closed():
                    state.conn = await self._connect()
                    state.locked.clear()
                await state.conn.execute(
                    "DELETE FROM shoal_leaders WHERE name = $1 AND holder = $2", name, holder
                )
                if name in state.locked:
                    await self._unlock(state.conn, state, name)
            except DRIVER_ERRORS as exc:
                await self._drop(state)
                raise StorageError(f"PostgreSQL: leader lease {name!r}: {exc}") from exc
            if not state.locked:
                await self._drop(state)  # a holder that leads nothing keeps no connection

    async def close(self) -> None:
        """Close every holder's connection (PostgreSQL releases their locks)."""
        for state in self._holders.values():
            await self._drop(state)
        self._holders.clear()

    @staticmethod
    async def _drop(state: _Holder) -> None:
        conn, state.conn = state.conn, None
        state.locked.clear()
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except (*DRIVER_ERRORS, TimeoutError):
                conn.terminate()
