"""Opening the database file: the exclusive lock, connection settings and migrations."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import sqlite3
from importlib import resources
from pathlib import Path

from shoal.core.errors import StorageError

logger = logging.getLogger(__name__)

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class FileLock:
    """An exclusive `flock` on `<path>.lock`, held while the store is open.

    The lock is on a sidecar file rather than the database so that SQLite's own locking is left
    alone; the kernel drops it when the process dies, so a crashed server never blocks the next.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StorageError(
                    f"{self.path.with_suffix('')} is in use by another shoal store "
                    f"(lock {self.path} is held): one store, of an app or a server, in this "
                    "process or another, uses a file at a time"
                ) from exc
            raise StorageError(f"cannot lock {self.path}: {exc}") from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def connect(path: Path, synchronous: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (the writer issues BEGIN and COMMIT itself)."""
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA cache_size = -65536")
        if readonly:
            conn.execute("PRAGMA query_only = 1")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    return conn


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("shoal.stores.sqlite").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise StorageError(f"migration {name} is out of sequence (expected {expected:04d})")
    return found


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations newer than the file's `user_version`; return their names."""
    migrations = _migrations()
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > len(migrations):
            raise StorageError(
                f"the database has schema version {current}, newer than this shoal "
                f"({len(migrations)}); upgrade shoal"
            )
        applied: list[str] = []
        for version, name, sql in migrations[current:]:
            # One transaction per file, with the version bump inside it: a crash mid-way leaves
            # the previous version, never a half-applied one.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
            logger.info(
                "applied migration %s",
                name,
                extra={"event": "store.migrated", "migration": name, "version": version},
            )
            applied.append(name.removesuffix(".sql"))
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.rollback()
        raise StorageError(f"migrating the database failed: {exc}") from exc
    return applied
