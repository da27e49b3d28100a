"""The reader: one thread with the store's read-only connection, which runs the store's reads
(`_queries`, and those of `_identity`).

In WAL mode it reads the last committed state while the writer (`_threads`) writes: a big
listing does not hold up a group commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shoal.core.errors import StorageError
from shoal.stores.sqlite._threads import Op

T = TypeVar("T")


class Reader:
    """One thread with a read-only connection: each read sees the last committed state (WAL)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shoal-sqlite-reader")

    async def run(self, query: Op[T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, query, self._conn)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
