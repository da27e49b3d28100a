from __future__ import annotations

import heapq

from shoal.core.errors import Conflict, NotFound
from shoal.core.identity import ApiToken, AuditEntry, NamespaceInfo, User


class MemoryIdentity:
    """The `IdentityStore` half of the memory store."""

    def __init__(self) -> None:
        self._namespaces: dict[str, NamespaceInfo] = {}
        self._users: dict[str, User] = {}
        self._tokens: dict[str, ApiToken] = {}
        self._audit: list[AuditEntry] = []

    async def create_namespace(self, namespace: NamespaceInfo) -> None:
        if namespace.name in self._namespaces:
            raise Conflict(f"namespace {namespace.name!r} exists")
        self._namespaces[namespace.name] = namespace

    async def list_namespaces(self) -> list[NamespaceInfo]:
        return [self._namespaces[name] for name in sorted(self._namespaces)]

    async def delete_namespace(self, name: str) -> None:
        if self._namespaces.pop(name, None) is None:
            raise NotFound(f"namespace {name!r} not found")

    async def save_user(self, user: User) -> None:
        self._users[user.name] = user

    async def get_user(self, name: str) -> User | None:
        return self._users.get(name)

    async def list_users(self) -> list[User]:
        return [self._users[name] for name in sorted(self._users)]

    async def delete_user(self, name: str) -> None:
        if self._users.pop(name, None) is None:
            raise NotFound(f"user {name!r} not found")

    async def save_token(self, token: ApiToken) -> None:
        self._tokens[token.token_hash] = token

    async def find_token(self, token_hash: str) -> ApiToken | None:
        return self._tokens.get(token_hash)

    async def list_tokens(self, owner: str | None = None) -> list[ApiToken]:
        tokens = (t for t in self._tokens.values() if owner is None or t.owner == owner)
        return sorted(tokens, key=lambda t: (t.created_at, t.id))

    async def append_audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    async def list_audit(self, limit: int = 100, namespace: str | None = None) -> list[AuditEntry]:
        entries = (e for e in reversed(self._audit) if namespace in (None, e.namespace))
        return [entry for _, entry in zip(range(limit), entries, strict=False)]

    async def purge_audit(self, before: float, limit: int) -> int:
        old = ((e.at, seq) for seq, e in enumerate(self._audit) if e.at < before)
        doomed = {seq for _, seq in heapq.nsmallest(limit, old)}
        self._audit = [e for seq, e in enumerate(self._audit) if seq not in doomed]
        return len(doomed)
