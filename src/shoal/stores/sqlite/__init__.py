"""The SQLite store: one file, held exclusively, WAL, one writer thread with group commit."""

from __future__ import annotations

from shoal.stores.sqlite._store import SqliteStore

__all__ = ["SqliteStore"]
