"""The PostgreSQL store (asyncpg): for several server replicas sharing one database.

`migrate(url)` applies the versioned migrations (``migrations/NNNN_slug.sql``) that a database
lacks; `PostgresStore` applies them at `open()` unless told not to.
"""

from __future__ import annotations

from shoal.stores.postgres._migrate import migrate
from shoal.stores.postgres._store import PostgresOptions, PostgresStore

__all__ = ["PostgresOptions", "PostgresStore", "migrate"]
