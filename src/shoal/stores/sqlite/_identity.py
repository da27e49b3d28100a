"""The `IdentityStore` half of the SQLite store: namespaces, users, tokens and the audit log.

Writes go through the writer thread like every other write; reads through the reader. These
are rare, small operations, so each is written plainly as a function of the connection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from shoal.core.errors import Conflict, NotFound
from shoal.core.identity import (
    ApiToken,
    AuditEntry,
    NamespaceInfo,
    User,
    decode_grants,
    encode_grants,
)
from shoal.stores.sqlite._threads import Op

T = TypeVar("T")

_TOKEN_COLUMNS = "id, owner, token_hash, grants, created_at, expires_at, revoked_at, description"


def _token(row: Sequence[Any]) -> ApiToken:
    return ApiToken(row[0], row[1], row[2], decode_grants(row[3]), row[4], row[5], row[6], row[7])


def _user(row: Sequence[Any]) -> User:
    return User(row[0], row[1], decode_grants(row[2]), row[3])


def _audit(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


def _delete(conn: sqlite3.Connection, sql: str, key: str, what: str) -> None:
    if conn.execute(sql, (key,)).rowcount == 0:
        raise NotFound(f"{what} {key!r} not found")


class IdentityMixin:
    """Mixed into `SqliteStore`, which provides `_write` and `_read`."""

    if TYPE_CHECKING:  # provided by SqliteStore; declared here for the type checker only

        async def _write(self, op: Op[T], *, atomic: bool = False) -> T: ...

        async def _read(self, query: Op[T]) -> T: ...

    async def create_namespace(self, namespace: NamespaceInfo) -> None:
        def op(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO namespaces (name, created_at, description) VALUES (?, ?, ?)",
                (namespace.name, namespace.created_at, namespace.description),
            )
            if cursor.rowcount == 0:
                raise Conflict(f"namespace {namespace.name!r} exists")

        await self._write(op, atomic=True)

    async def list_namespaces(self) -> list[NamespaceInfo]:
        def query(conn: sqlite3.Connection) -> list[NamespaceInfo]:
            rows = conn.execute(
                "SELECT name, created_at, description FROM namespaces ORDER BY name"
            )
            return [NamespaceInfo(*row) for row in rows]

        return await self._read(query)

    async def delete_namespace(self, name: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            _delete(conn, "DELETE FROM namespaces WHERE name = ?", name, "namespace")

        await self._write(op, atomic=True)

    async def save_user(self, user: User) -> None:
        params = (user.name, user.password_hash, encode_grants(user.grants), user.created_at)
        await self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO users (name, password_hash, grants, created_at)"
                " VALUES (?, ?, ?, ?)",
                params,
            ),
            atomic=True,
        )

    async def get_user(self, name: str) -> User | None:
        def query(conn: sqlite3.Connection) -> User | None:
            row = conn.execute(
                "SELECT name, password_hash, grants, created_at FROM users WHERE name = ?", (name,)
            ).fetchone()
            return None if row is None else _user(row)

        return await self._read(query)

    async def list_users(self) -> list[User]:
        def query(conn: sqlite3.Connection) -> list[User]:
            sql = "SELECT name, password_hash, grants, created_at FROM users ORDER BY name"
            return [_user(row) for row in conn.execute(sql)]

        return await self._read(query)

    async def delete_user(self, name: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            _delete(conn, "DELETE FROM users WHERE name = ?", name, "user")

        await self._write(op, atomic=True)

    async def save_token(self, token: ApiToken) -> None:
        params = (
            token.id,
            token.owner,
            token.token_hash,
            encode_grants(token.grants),
            token.created_at,
            token.expires_at,
            token.revoked_at,
            token.description,
        )
        await self._write(
            lambda conn: conn.execute(
                f"INSERT OR REPLACE INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            ),
            atomic=True,
        )

    async def find_token(self, token_hash: str) -> ApiToken | None:
        def query(conn: sqlite3.Connection) -> ApiToken | None:
            row = conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            return None if row is None else _token(row)

        return await self._read(query)

    async def list_tokens(self, owner: str | None = None) -> list[ApiToken]:
        def query(conn: sqlite3.Connection) -> list[ApiToken]:
            rows = conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE ?1 IS NULL OR owner = ?1"
                " ORDER BY created_at, id",
                (owner,),
            )
            return [_token(row) for row in rows]

        return await self._read(query)

    async def append_audit(self, entry: AuditEntry) -> None:
        params = (
            entry.at,
            entry.actor,
            entry.action,
            entry.namespace,
            entry.target,
            json.dumps(dict(entry.detail)),
        )
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO audit (at, actor, action, namespace, target, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                params,
            ),
            atomic=True,
        )

    async def list_audit(self, limit: int = 100, namespace: str | None = None) -> list[AuditEntry]:
        def query(conn: sqlite3.Connection) -> list[AuditEntry]:
            rows = conn.execute(
                "SELECT at, actor, action, namespace, target, detail FROM audit"
                " WHERE ?1 IS NULL OR namespace = ?1 ORDER BY seq DESC LIMIT ?2",
                (namespace, limit),
            )
            return [_audit(row) for row in rows]

        return await self._read(query)

    async def purge_audit(self, before: float, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM audit WHERE seq IN"
                " (SELECT seq FROM audit WHERE at < ? ORDER BY at LIMIT ?)",
                (before, limit),
            ).rowcount

        return await self._write(op, atomic=True)
