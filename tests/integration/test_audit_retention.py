"""`auth.audit_retention`: the server deletes audit entries older than it; 0 keeps them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from shoal.core.identity import AuditEntry
from shoal.stores.sqlite import SqliteStore

from ._grpc_server import start_server


async def _seed(db: Path) -> None:
    store = SqliteStore(str(db))
    await store.open()
    try:
        now = time.time()
        await store.append_audit(AuditEntry(now - 7200, "root", "queue.purge", "ns", "old"))
        await store.append_audit(AuditEntry(now, "root", "queue.purge", "ns", "recent"))
    finally:
        await store.close()


def _targets(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT target FROM audit ORDER BY seq")]


def _serve(tmp_path: Path, *args: str) -> list[str]:
    """Seed a store, serve it with `args` until the old entry is gone (at most 10 s)."""
    db = tmp_path / "shoal.db"
    asyncio.run(_seed(db))
    server = start_server(tmp_path, *args, store=f"sqlite:///{db}")
    try:
        deadline = time.monotonic() + (10.0 if args else 1.0)
        while "old" in _targets(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        return _targets(db)
    finally:
        server.stop()


def test_entries_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    assert _serve(tmp_path, "--set", "auth.audit_retention=1h") == ["recent"]


def test_by_default_the_audit_log_is_kept(tmp_path: Path) -> None:
    assert _serve(tmp_path) == ["old", "recent"]
