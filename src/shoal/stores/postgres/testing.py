"""Test support: a `PostgresStore` on a database of its own, made and dropped per use.

Each fresh database is copied from a template that holds the migrated schema, built once per
schema version (its name carries a digest of the migrations) and kept on the server as a cache,
so a fresh store costs one `CREATE DATABASE ... TEMPLATE` rather than running the migrations.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shoal.core.ports import Store
from shoal.stores.postgres import _migrate
from shoal.stores.postgres._store import PostgresOptions, PostgresStore

__all__ = ["database_url", "fresh_database_store", "temporary_database"]

#: Serialises template builds across test processes (pytest-xdist workers).
_TEMPLATE_LOCK = 0x53484C54  # "SHLT"
_PREFIX = "shoal_test_"
_templates: dict[str, str] = {}


def database_url(url: str, database: str) -> str:
    """`url` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _ensure_template(conn: asyncpg.Connection, url: str) -> str:
    digest = _migrate.schema_digest()
    name = f"shoal_template_{digest}"
    if _templates.get(url) == name:
        return name
    await conn.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Build under a temporary name and rename when complete, so a half-built template
            # (a test run killed midway) is never used.
            building = f"{name}_building"
            await conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{building}"')
            target = await asyncpg.connect(database_url(url, building))
            try:
                await _migrate.apply(target)
            finally:
                await target.close()
            await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
            stale = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'shoal\\_template\\_%'"
                " AND datname <> $1",
                name,
            )
            for row in stale:
                await conn.execute(f'ALTER DATABASE "{row["datname"]}" WITH IS_TEMPLATE false')
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK)
    _templates[url] = name
    return name


@asynccontextmanager
async def temporary_database(url: str) -> AsyncIterator[str]:
    """A new database with shoal's schema on the server of `url`; its URL. Dropped on exit."""
    admin = await asyncpg.connect(url)
    try:
        template = await _ensure_template(admin, url)
        name = f"{_PREFIX}{uuid.uuid4().hex[:16]}"
        for attempt in range(20):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.exceptions.ObjectInUseError:
                # Another process is copying the template at this instant; copies of one
                # template may not overlap with a session on it. Try again shortly.
                if attempt == 19:
                    raise
                await asyncio.sleep(0.05)
    finally:
        await admin.close()
    try:
        yield database_url(url, name)
    finally:
        admin = await asyncpg.connect(url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def fresh_database_store(url: str) -> AsyncIterator[Store]:
    """An open `PostgresStore` on a new database (see `temporary_database`); closed and dropped
    on exit.
    """
    async with temporary_database(url) as database:
        store = PostgresStore(database, PostgresOptions(max_connections=8))
        await store.open()
        try:
            yield store
        finally:
            await store.close()
