"""WAL checkpoints on a thread of their own, so that no commit pays for one.

SQLite checkpoints by itself inside the COMMIT that takes the WAL past `wal_autocheckpoint`
pages (1000 by default): that commit also copies the WAL into the database and syncs both
files. With shoal's schema a lone enqueue writes seven pages, so every ~140th commit took
~6 ms instead of ~0.2, which is what a p99 latency sees.

This thread copies instead: a PASSIVE checkpoint every `INTERVAL` while the WAL is being
written, beside the writer, blocking nobody. It cannot finish the job alone: under a steady
stream of commits it never catches up with the end of the WAL, and SQLite starts a WAL over
only after a checkpoint that did. So the writer keeps its own checkpoint, at `WRITER_PAGES`
(64 MiB) instead of 1000 pages: it then copies only the tail this thread has not, and bounds
the WAL. A commit pays for a checkpoint 16 times less often, and for a much smaller one.
Durability does not change: a commit is in the WAL either way, and a checkpoint syncs the WAL
before it copies.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

from shoal.core.errors import StorageError
from shoal.stores.sqlite._connection import connect

__all__ = ["Checkpointer"]

logger = logging.getLogger(__name__)

#: The writer's own checkpoint (`PRAGMA wal_autocheckpoint`), in pages: it bounds the WAL.
WRITER_PAGES = 16384
#: How often the thread checkpoints while the WAL changes (a stat call tells).
INTERVAL = 0.05


class Checkpointer:
    """The thread that checkpoints (see the module docstring)."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._wal = path.with_name(path.name + "-wal")
        self._synchronous = synchronous
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="shoal-sqlite-checkpoints", daemon=True
        )
        #: Checkpoints run so far.
        self.checkpoints = 0

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """End the thread after a last checkpoint that leaves the WAL empty (blocks briefly:
        call it off the event loop, after the writer has stopped).
        """
        self._stop.set()
        self._thread.join()

    def _wal_changed(self, seen: list[int]) -> bool:
        try:
            stat = os.stat(self._wal)
        except FileNotFoundError:
            return False
        now = [stat.st_mtime_ns, stat.st_size]
        changed, seen[:] = now != seen, now
        return changed

    def _run(self) -> None:
        try:
            conn = connect(self._path, self._synchronous)
        except StorageError:
            # the writer still checkpoints at WRITER_PAGES: slower commits, nothing lost
            logger.exception(
                "the checkpoint thread cannot open the database",
                extra={"event": "store.checkpoint_failed", "path": str(self._path)},
            )
            return
        seen: list[int] = []
        try:
            while not self._stop.wait(INTERVAL):
                if self._wal_changed(seen):
                    self._checkpoint(conn, "PASSIVE")
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # busy or I/O: the next round tries again
            logger.warning(
                "WAL checkpoint failed: %s",
                exc,
                extra={"event": "store.checkpoint_failed", "path": str(self._path)},
            )
