from __future__ import annotations

import json

import asyncpg

from shoal.core.errors import Conflict, NotFound
from shoal.core.identity import (
    ApiToken,
    AuditEntry,
    NamespaceInfo,
    User,
    decode_grants,
    encode_grants,
)
from shoal.stores.postgres._base import Base, row_count

_SAVE_TOKEN = """
INSERT INTO shoal_tokens (token_hash, id, owner, grants, created_at, expires_at, revoked_at,
                          description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (token_hash) DO UPDATE SET
    id = EXCLUDED.id, owner = EXCLUDED.owner, grants = EXCLUDED.grants,
    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
    revoked_at = EXCLUDED.revoked_at, description = EXCLUDED.description
"""


def _token(row: asyncpg.Record) -> ApiToken:
    return ApiToken(
        id=row["id"],
        owner=row["owner"],
        token_hash=row["token_hash"],
        grants=decode_grants(row["grants"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        description=row["description"],
    )


def _user(row: asyncpg.Record) -> User:
    return User(row["name"], row["password_hash"], decode_grants(row["grants"]), row["created_at"])


class Identity(Base):
    """The `IdentityStore` half: namespaces, users, tokens and the audit log."""

    async def create_namespace(self, namespace: NamespaceInfo) -> None:
        status = await self._execute(
            "INSERT INTO shoal_namespaces (name, created_at, description) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING",
            namespace.name,
            namespace.created_at,
            namespace.description,
        )
        if row_count(status) == 0:
            raise Conflict(f"namespace {namespace.name!r} exists")

    async def list_namespaces(self) -> list[NamespaceInfo]:
        rows = await self._fetch("SELECT * FROM shoal_namespaces ORDER BY name")
        return [NamespaceInfo(r["name"], r["created_at"], r["description"]) for r in rows]

    async def delete_namespace(self, name: str) -> None:
        status = await self._execute("DELETE FROM shoal_namespaces WHERE name = $1", name)
        if row_count(status) == 0:
            raise NotFound(f"namespace {name!r} not found")

    async def save_user(self, user: User) -> None:
        await self._execute(
            "INSERT INTO shoal_users (name, password_hash, grants, created_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET"
            " password_hash = EXCLUDED.password_hash, grants = EXCLUDED.grants,"
            " created_at = EXCLUDED.created_at",
            user.name,
            user.password_hash,
            encode_grants(user.grants),
            user.created_at,
        )

    async def get_user(self, name: str) -> User | None:
        row = await self._fetchrow("SELECT * FROM shoal_users WHERE name = $1", name)
        return None if row is None else _user(row)

    async def list_users(self) -> list[User]:
        return [_user(row) for row in await self._fetch("SELECT * FROM shoal_users ORDER BY name")]

    async def delete_user(self, name: str) -> None:
        status = await self._execute("DELETE FROM shoal_users WHERE name = $1", name)
        if row_count(status) == 0:
            raise NotFound(f"user {name!r} not found")

    async def save_token(self, token: ApiToken) -> None:
        await self._execute(
            _SAVE_TOKEN,
            token.token_hash,
            token.id,
            token.owner,
            encode_grants(token.grants),
            token.created_at,
            token.expires_at,
            token.revoked_at,
            token.description,
        )

    async def find_token(self, token_hash: str) -> ApiToken | None:
        row = await self._fetchrow("SELECT * FROM shoal_tokens WHERE token_hash = $1", token_hash)
        return None if row is None else _token(row)

    async def list_tokens(self, owner: str | None = None) -> list[ApiToken]:
        rows = await self._fetch(
            "SELECT * FROM shoal_tokens WHERE $1::text IS NULL OR owner = $1"
            " ORDER BY created_at, id",
            owner,
        )
        return [_token(row) for row in rows]

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._execute(
            "INSERT INTO shoal_audit (at, actor, action, namespace, target, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            entry.at,
            entry.actor,
            entry.action,
            entry.namespace,
            entry.target,
            json.dumps(dict(entry.detail)),
        )

    async def list_audit(self, limit: int = 100, namespace: str | None = None) -> list[AuditEntry]:
        rows = await self._fetch(
            "SELECT * FROM shoal_audit WHERE $2::text IS NULL OR namespace = $2"
            " ORDER BY seq DESC LIMIT $1",
            limit,
            namespace,
        )
        return [_audit(row) for row in rows]

    async def purge_audit(self, before: float, limit: int) -> int:
        status = await self._execute(
            "DELETE FROM shoal_audit WHERE seq IN"
            " (SELECT seq FROM shoal_audit WHERE at < $1 ORDER BY at LIMIT $2)",
            before,
            limit,
        )
        return row_count(status)


def _audit(row: asyncpg.Record) -> AuditEntry:
    detail = json.loads(row["detail"])
    return AuditEntry(
        row["at"], row["actor"], row["action"], row["namespace"], row["target"], detail
    )
