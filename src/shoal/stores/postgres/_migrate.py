from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from importlib import resources

import asyncpg

from shoal.core.errors import StorageError

logger = logging.getLogger(__name__)

#: Serialises migrators of one database (several replicas may start at once).
MIGRATION_LOCK = 0x5348_4F41  # "SHOA"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with the package, in order (read when first needed)."""
    folder = resources.files("shoal.stores.postgres").joinpath("migrations")
    found = [
        Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if _NAME.match(entry.name)
    ]
    return sorted(found, key=lambda m: m.name)


def schema_digest() -> str:
    """A short digest of every migration's text: names a template database built from them."""
    digest = hashlib.sha256()
    for migration in available():
        digest.update(migration.name.encode() + b"\0" + migration.sql.encode() + b"\0")
    return digest.hexdigest()[:12]


_LEDGER = """
CREATE TABLE IF NOT EXISTS shoal_migrations (
    name       text PRIMARY KEY,
    applied_at double precision NOT NULL
)
"""


async def apply(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; their names."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_LEDGER)
        done = {row["name"] for row in await conn.fetch("SELECT name FROM shoal_migrations")}
        for migration in available():
            if migration.name in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO shoal_migrations (name, applied_at) VALUES ($1, $2)",
                    migration.name,
                    time.time(),
                )
            logger.info(
                "applied migration %s",
                migration.name,
                extra={"event": "store.migrated", "migration": migration.name},
            )
            applied.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def pending(conn: asyncpg.Connection) -> list[str]:
    """The migrations this database lacks (all of them on an empty database)."""
    exists = await conn.fetchval("SELECT to_regclass('shoal_migrations') IS NOT NULL")
    done = (
        {row["name"] for row in await conn.fetch("SELECT name FROM shoal_migrations")}
        if exists
        else set()
    )
    return [m.name for m in available() if m.name not in done]


async def migrate(url: str) -> list[str]:
    """Connect to `url`, apply the missing migrations, and return their names."""
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        return await apply(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError(f"migration failed: {exc}") from exc
    finally:
        await conn.close()
