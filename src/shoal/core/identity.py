"""Namespaces, users, API tokens and the audit log: the records and the port that keeps them.

`IdentityStore` is a port beside `Store`; a backend implements both (one database). Secrets are
stored only as hashes (`core.auth`), so no record here can leak a password or a token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shoal.core.auth import Role
from shoal.core.errors import StorageError

__all__ = [
    "ApiToken",
    "AuditEntry",
    "IdentityStore",
    "NamespaceInfo",
    "User",
    "decode_grants",
    "encode_grants",
]


def encode_grants(grants: Mapping[str, frozenset[Role]]) -> str:
    """Grants as stored: JSON text, namespace -> sorted role names."""
    return json.dumps({ns: sorted(role.value for role in roles) for ns, roles in grants.items()})


def decode_grants(text: str) -> dict[str, frozenset[Role]]:
    """Grants written by `encode_grants`; `StorageError` if the text is not theirs."""
    try:
        data = json.loads(text)
        return {ns: frozenset(Role(name) for name in names) for ns, names in data.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise StorageError(f"unreadable grants {text[:80]!r}") from exc


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    """A tenant: every job, queue, schedule and worker belongs to one."""

    name: str
    created_at: float
    description: str = ""


@dataclass(frozen=True, slots=True)
class User:
    """A person or service that logs in with a password."""

    name: str
    password_hash: str
    grants: Mapping[str, frozenset[Role]]
    created_at: float


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as stored: its hash, never the token."""

    id: str
    owner: str
    token_hash: str
    grants: Mapping[str, frozenset[Role]]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    description: str = ""

    def usable(self, now: float) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: who did what to which object, when."""

    at: float
    actor: str
    action: str
    namespace: str
    target: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)


class IdentityStore(Protocol):
    """Durable namespaces, users, tokens and audit entries."""

    async def create_namespace(self, namespace: NamespaceInfo) -> None:
        """Create a namespace; `Conflict` if it exists."""
        ...

    async def list_namespaces(self) -> list[NamespaceInfo]:
        """Every namespace, by name."""
        ...

    async def delete_namespace(self, name: str) -> None:
        """Forget a namespace; `NotFound` if there is none. Its jobs are the caller's concern."""
        ...

    async def save_user(self, user: User) -> None:
        """Create or replace a user."""
        ...

    async def get_user(self, name: str) -> User | None:
        """The user, or None."""
        ...

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    async def delete_user(self, name: str) -> None:
        """Remove a user and revoke nothing else; `NotFound` if there is none."""
        ...

    async def save_token(self, token: ApiToken) -> None:
        """Create or replace a token record."""
        ...

    async def find_token(self, token_hash: str) -> ApiToken | None:
        """The token with this hash, usable or not, or None."""
        ...

    async def list_tokens(self, owner: str | None = None) -> list[ApiToken]:
        """Tokens (of one owner, or all), oldest first."""
        ...

    async def append_audit(self, entry: AuditEntry) -> None:
        """Record an admin action."""
        ...

    async def list_audit(self, limit: int = 100, namespace: str | None = None) -> list[AuditEntry]:
        """The most recent entries first."""
        ...

    async def purge_audit(self, before: float, limit: int) -> int:
        """Delete up to `limit` entries made before `before`, the oldest first; how many."""
        ...
