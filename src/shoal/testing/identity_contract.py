"""The conformance suite of `IdentityStore`: needs an `identity_store` fixture (opened, empty)."""

from __future__ import annotations

import pytest

from shoal.core.auth import Role
from shoal.core.errors import Conflict, NotFound
from shoal.core.identity import ApiToken, AuditEntry, IdentityStore, NamespaceInfo, User
from shoal.testing._jobs import T0

__all__ = ["IdentityContract"]

ADMIN_EVERYWHERE = {"*": frozenset({Role.ADMIN})}


class IdentityContract:
    """Behaviour every identity store must show."""

    async def test_namespaces(self, identity_store: IdentityStore) -> None:
        await identity_store.create_namespace(NamespaceInfo("b", T0, "second"))
        await identity_store.create_namespace(NamespaceInfo("a", T0 + 1))
        with pytest.raises(Conflict):
            await identity_store.create_namespace(NamespaceInfo("a", T0 + 2))
        listed = await identity_store.list_namespaces()
        assert listed == [NamespaceInfo("a", T0 + 1), NamespaceInfo("b", T0, "second")]
        await identity_store.delete_namespace("a")
        with pytest.raises(NotFound):
            await identity_store.delete_namespace("a")

    async def test_users_round_trip_with_grants(self, identity_store: IdentityStore) -> None:
        grants = {"default": frozenset({Role.PRODUCER, Role.VIEWER}), "*": frozenset({Role.WORKER})}
        user = User("ann", "scrypt$1$2$3$salt$hash", grants, T0)
        await identity_store.save_user(user)
        await identity_store.save_user(User("bob", "scrypt$x", ADMIN_EVERYWHERE, T0))
        assert await identity_store.get_user("ann") == user
        assert [u.name for u in await identity_store.list_users()] == ["ann", "bob"]
        changed = User("ann", "scrypt$new", {}, T0)
        await identity_store.save_user(changed)
        assert await identity_store.get_user("ann") == changed
        await identity_store.delete_user("ann")
        assert await identity_store.get_user("ann") is None
        with pytest.raises(NotFound):
            await identity_store.delete_user("ann")

    async def test_tokens_by_hash_and_owner(self, identity_store: IdentityStore) -> None:
        first = ApiToken("t1", "ann", "h1", ADMIN_EVERYWHERE, T0, T0 + 60, None, "ci")
        second = ApiToken("t2", "bob", "h2", {"x": frozenset({Role.VIEWER})}, T0 + 1)
        await identity_store.save_token(first)
        await identity_store.save_token(second)
        assert await identity_store.find_token("h1") == first
        assert await identity_store.find_token("nope") is None
        assert await identity_store.list_tokens("bob") == [second]
        assert await identity_store.list_tokens() == [first, second]
        revoked = ApiToken("t1", "ann", "h1", ADMIN_EVERYWHERE, T0, T0 + 60, T0 + 5, "ci")
        await identity_store.save_token(revoked)
        assert await identity_store.find_token("h1") == revoked
        assert not revoked.usable(T0 + 6) and first.usable(T0) and not first.usable(T0 + 60)

    async def test_audit_newest_first(self, identity_store: IdentityStore) -> None:
        for n in range(5):
            entry = AuditEntry(T0 + n, "ann", "queue.purge", "ns" if n % 2 else "other", f"q{n}")
            await identity_store.append_audit(entry)
        entries = await identity_store.list_audit(limit=3)
        assert [e.target for e in entries] == ["q4", "q3", "q2"]
        assert [e.target for e in await identity_store.list_audit(10, "ns")] == ["q3", "q1"]
        detailed = AuditEntry(T0 + 9, "bob", "token.create", "*", "t1", {"owner": "ann"})
        await identity_store.append_audit(detailed)
        assert (await identity_store.list_audit(1))[0] == detailed

    async def test_audit_purge_deletes_the_oldest_before_a_time_in_batches(
        self, identity_store: IdentityStore
    ) -> None:
        for n in (3, 0, 4, 1, 2, 9):  # appended out of time order: seq is not the clock
            await identity_store.append_audit(
                AuditEntry(T0 + n, "ann", "queue.purge", "ns", f"q{n}")
            )
        assert await identity_store.purge_audit(T0 + 4, limit=3) == 3
        assert sorted(e.target for e in await identity_store.list_audit(10)) == ["q3", "q4", "q9"]
        assert await identity_store.purge_audit(T0 + 4, limit=3) == 1
        assert await identity_store.purge_audit(T0 + 4, limit=3) == 0
        assert [e.target for e in await identity_store.list_audit(10)] == ["q9", "q4"]
