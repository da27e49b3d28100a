from __future__ import annotations

import asyncio

import pytest

from shoal.core.access import LIVE_RECHECK, AccessService, LoginThrottle
from shoal.core.auth import (
    ANONYMOUS,
    ROLE_ACTIONS,
    Action,
    Authorizer,
    Principal,
    Role,
    hash_password,
    hash_token,
    new_api_token,
    parse_grants,
    verify_password,
)
from shoal.core.clock import ManualClock
from shoal.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from shoal.core.events import EventBus
from shoal.core.guard import GuardedService
from shoal.core.identity import ApiToken, AuditEntry
from shoal.core.model import LeaseRef
from shoal.core.service import ClaimInput, QueueService
from shoal.stores.memory import MemoryStore

ADMIN = Principal("root", "password", {"*": frozenset({Role.ADMIN})})


@pytest.fixture
def access(manual_clock: ManualClock) -> AccessService:
    throttle = LoginThrottle(base_delay=0.0, max_delay=0.0)
    return AccessService(MemoryStore(), enabled=True, clock=manual_clock, throttle=throttle)


def test_passwords_hash_with_salt_and_verify() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and "s3cret" not in first
    assert verify_password("s3cret", first) and not verify_password("other", first)
    assert not verify_password("s3cret", "garbage") and not verify_password("x", "md5$a$b$c$d$e")
    with pytest.raises(InvalidArgument):
        hash_password("")


def test_tokens_are_random_and_hashed() -> None:
    token = new_api_token()
    assert token.startswith("shoal_") and len(token) > 40
    assert hash_token(token) != token and len(hash_token(token)) == 64


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(role: Role) -> None:
    principal = Principal("p", "token", {"ns": frozenset({role})})
    authorizer = Authorizer()
    for action in Action:
        assert authorizer.allows(principal, action, "ns") == (action in ROLE_ACTIONS[role])
        assert not authorizer.allows(principal, action, "elsewhere")
    assert ROLE_ACTIONS[Role.ADMIN] == frozenset(Action)
    assert ROLE_ACTIONS[Role.VIEWER] == {Action.READ}


def test_star_grant_covers_every_namespace_and_hook_refines() -> None:
    viewer = Principal("v", "token", {"*": frozenset({Role.VIEWER})})
    assert Authorizer().allows(viewer, Action.READ, "any")

    def no_reads_of_secret(p: Principal, action: Action, ns: str, decision: bool) -> bool:
        return decision and ns != "secret"

    hooked = Authorizer(no_reads_of_secret)
    assert hooked.allows(viewer, Action.READ, "any") and not hooked.allows(
        viewer, Action.READ, "secret"
    )


def test_parse_grants() -> None:
    assert parse_grants({"a": "viewer", "*": ["worker", "producer"]}) == {
        "a": {Role.VIEWER},
        "*": {Role.WORKER, Role.PRODUCER},
    }
    with pytest.raises(InvalidArgument, match="unknown role"):
        parse_grants({"a": ["boss"]})


async def test_password_login(access: AccessService) -> None:
    await access.add_user(ADMIN, "ann", "pw", {"default": frozenset({Role.PRODUCER})})
    principal = await access.authenticate_password("ann", "pw")
    assert principal.roles_in("default") == {Role.PRODUCER}
    for name, password in [("ann", "wrong"), ("nobody", "pw")]:
        with pytest.raises(Unauthenticated, match="wrong user name or password"):
            await access.authenticate_password(name, password)


@pytest.mark.parametrize("expires_in", [0.0, -1.0, float("nan"), float("inf")])
async def test_a_token_lifetime_must_be_positive_and_finite(
    access: AccessService, expires_in: float
) -> None:
    # NaN passed the "<= 0" check and made a token that could never be used
    with pytest.raises(InvalidArgument) as raised:
        await access.create_token(ADMIN, "ann", {"default": frozenset({Role.WORKER})}, expires_in)
    assert raised.value.field == "expires_in"
    assert await access.list_tokens(ADMIN) == []


async def test_tokens_expire_and_revoke(access: AccessService, manual_clock: ManualClock) -> None:
    grants = {"default": frozenset({Role.WORKER})}
    record, plaintext = await access.create_token(ADMIN, "ann", grants, expires_in=60)
    assert record.token_hash == hash_token(plaintext) and plaintext not in repr(record)
    assert (await access.authenticate_token(plaintext)).roles_in("default") == {Role.WORKER}
    manual_clock.advance(61)
    with pytest.raises(Unauthenticated):
        await access.authenticate_token(plaintext)
    _, other = await access.create_token(ADMIN, "ann", grants)
    await access.revoke_token(ADMIN, (await access.list_tokens(ADMIN))[-1].id)
    with pytest.raises(Unauthenticated):
        await access.authenticate_token(other)
    with pytest.raises(Unauthenticated):
        await access.authenticate_token("shoal_forged")


async def test_management_needs_rights_and_is_audited(access: AccessService) -> None:
    producer = Principal("p", "token", {"default": frozenset({Role.PRODUCER})})
    with pytest.raises(PermissionDenied):
        await access.add_user(producer, "x", "pw", {"default": frozenset({Role.VIEWER})})
    with pytest.raises(PermissionDenied):
        await access.create_namespace(producer, "team")
    await access.create_namespace(ADMIN, "team")
    with pytest.raises(Conflict):
        await access.create_namespace(ADMIN, "team")
    await access.add_user(ADMIN, "ann", "pw", {"team": frozenset({Role.VIEWER})})
    with pytest.raises(Conflict):
        await access.add_user(ADMIN, "ann", "pw", {"team": frozenset({Role.VIEWER})})
    ann = await access.authenticate_password("ann", "pw")
    assert [n.name for n in await access.list_namespaces(ann)] == ["team"]
    assert [n.name for n in await access.list_namespaces(producer)] == []

    async def jobs_in(namespace: str) -> int:
        return 3

    with pytest.raises(Conflict, match="holds 3 jobs"):
        await access.delete_namespace(ADMIN, "team", jobs_in)
    await access.delete_namespace(ADMIN, "team", jobs_in, force=True)
    await access.remove_user(ADMIN, "ann")
    with pytest.raises(NotFound):
        await access.set_password(ADMIN, "ann", "x")
    actions = [entry.action for entry in await access.audit_log(ADMIN)]
    assert actions == ["user.remove", "namespace.delete", "user.add", "namespace.create"]
    with pytest.raises(PermissionDenied):
        await access.audit_log(producer)


async def test_a_deleted_namespace_is_published_once_it_is_gone(
    manual_clock: ManualClock,
) -> None:
    # what keeps state per namespace (HTTP's metrics) learns of it, whichever surface deleted it
    events = EventBus()
    seen = events.subscribe()
    access = AccessService(MemoryStore(), enabled=True, clock=manual_clock, events=events)
    await access.create_namespace(ADMIN, "team")

    async def jobs_in(namespace: str) -> int:
        return 2

    with pytest.raises(Conflict):
        await access.delete_namespace(ADMIN, "team", jobs_in)
    with pytest.raises(NotFound):
        await access.delete_namespace(ADMIN, "other", jobs_in, force=True)
    assert await seen.next(timeout=0) is None  # nothing was deleted
    manual_clock.advance(5.0)
    await access.delete_namespace(ADMIN, "team", jobs_in, force=True)
    event = await seen.next(timeout=0)
    assert event is not None
    assert (event.kind, event.namespace) == ("namespace.deleted", "team")
    assert event.at == manual_clock.now()
    assert await seen.next(timeout=0) is None


async def test_anonymous_only_when_auth_is_off(manual_clock: ManualClock) -> None:
    assert AccessService(MemoryStore(), enabled=False).anonymous() is ANONYMOUS
    with pytest.raises(Unauthenticated):
        AccessService(MemoryStore(), enabled=True).anonymous()


def test_throttle_doubles_and_resets() -> None:
    throttle = LoginThrottle(base_delay=0.1, max_delay=0.3)
    assert throttle.delay("k") == 0
    for expected in (0.1, 0.2, 0.3, 0.3):
        throttle.record("k", ok=False)
        assert throttle.delay("k") == pytest.approx(expected)
    throttle.record("k", ok=True)
    assert throttle.delay("k") == 0


async def test_audit_older_than_the_retention_is_purged_oldest_first(
    access: AccessService, manual_clock: ManualClock
) -> None:
    now = manual_clock.now()
    for age in (5000, 4000, 3000, 10):
        await access.store.append_audit(
            AuditEntry(now - age, "root", "queue.purge", "ns", str(age))
        )
    assert await access.purge_audit(older_than=3600, limit=1) == 1
    assert await access.purge_audit(older_than=3600, limit=10) == 1
    assert [entry.target for entry in await access.store.list_audit()] == ["10", "3000"]
    assert await access.purge_audit(older_than=3600, limit=10) == 0


async def test_a_session_ends_once_its_token_is_revoked_or_its_user_removed(
    access: AccessService, manual_clock: ManualClock
) -> None:
    # a principal lives as long as its session (a dashboard cookie, a TCP AUTH, a worker
    # stream): those kept working after the token was revoked or the user removed
    await access.add_user(ADMIN, "ann", "pw", {"default": frozenset({Role.PRODUCER})})
    grants = {"default": frozenset({Role.WORKER})}
    _, plaintext = await access.create_token(ADMIN, "ann", grants)
    by_token = await access.authenticate_token(plaintext)
    by_password = await access.authenticate_password("ann", "pw")
    replica = AccessService(access.store, enabled=True, clock=manual_clock)
    for service in (access, replica):
        service.authorizer.require(by_token, Action.WORK, "default")
        service.authorizer.require(by_password, Action.ENQUEUE, "default")
    await access.revoke_token(ADMIN, (await access.list_tokens(ADMIN))[0].id)
    with pytest.raises(Unauthenticated, match="revoked"):  # at once where it was revoked
        access.authorizer.require(by_token, Action.WORK, "default")
    assert not access.authorizer.allows(by_token, Action.WORK, "default")
    # another replica trusts what it read for LIVE_RECHECK seconds, then reads it again
    replica.authorizer.require(by_token, Action.WORK, "default")
    manual_clock.advance(LIVE_RECHECK)
    replica.authorizer.require(by_token, Action.WORK, "default")  # the read starts now
    await asyncio.sleep(0.01)
    with pytest.raises(Unauthenticated):
        replica.authorizer.require(by_token, Action.WORK, "default")
    await access.remove_user(ADMIN, "ann")
    with pytest.raises(Unauthenticated):
        access.authorizer.require(by_password, Action.ENQUEUE, "default")
    assert access.is_live(ANONYMOUS)  # no credentials to lose


async def test_a_user_removed_and_added_again_is_another_user(
    access: AccessService, manual_clock: ManualClock
) -> None:
    # liveness asked only whether a user of that name existed: the removed user's sessions
    # came back with their old grants, and the new user's logins were refused
    await access.add_user(ADMIN, "bob", "pw-one", {"*": frozenset({Role.ADMIN})})
    old = await access.authenticate_password("bob", "pw-one")
    await access.remove_user(ADMIN, "bob")
    manual_clock.advance(1)
    await access.add_user(ADMIN, "bob", "pw-two", {"default": frozenset({Role.PRODUCER})})
    new = await access.authenticate_password("bob", "pw-two")
    access.authorizer.require(new, Action.ENQUEUE, "default")
    manual_clock.advance(LIVE_RECHECK)
    assert not access.is_live(old)  # starts a re-read
    await asyncio.sleep(0.01)
    assert not access.authorizer.allows(old, Action.MANAGE_USERS, "*")
    assert access.is_live(new)


class _SlowTokens(MemoryStore):
    """A store whose token lookups read at once and answer when `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def find_token(self, token_hash: str) -> ApiToken | None:
        found = await super().find_token(token_hash)
        await self.go.wait()
        return found


async def test_a_reread_in_flight_does_not_undo_a_revocation(manual_clock: ManualClock) -> None:
    store = _SlowTokens()
    access = AccessService(store, enabled=True, clock=manual_clock)
    store.go.set()
    _, plaintext = await access.create_token(ADMIN, "ann", {"default": frozenset({Role.WORKER})})
    principal = await access.authenticate_token(plaintext)
    assert access.is_live(principal)  # a session in use
    store.go.clear()
    manual_clock.advance(LIVE_RECHECK)
    assert access.is_live(principal)  # the re-read starts, and waits for the store
    await asyncio.sleep(0.01)
    await access.revoke_token(ADMIN, (await access.list_tokens(ADMIN))[0].id)
    store.go.set()  # ...and answers with what it read before the revocation
    await asyncio.sleep(0.01)
    assert not access.is_live(principal)


async def test_a_revoked_principal_is_unauthenticated_whatever_it_does(
    access: AccessService, memory_service: QueueService
) -> None:
    # outcomes of a lease went through another check, which said PermissionDenied
    _, plaintext = await access.create_token(ADMIN, "ann", {"default": frozenset({Role.WORKER})})
    principal = await access.authenticate_token(plaintext)
    guarded = GuardedService(memory_service, principal, access.authorizer)
    await access.revoke_token(ADMIN, (await access.list_tokens(ADMIN))[0].id)
    for call in (
        lambda: guarded.complete(LeaseRef("j", "t"), None),
        lambda: guarded.heartbeat([LeaseRef("j", "t")]),
        lambda: guarded.claim(ClaimInput("w", ("default",))),
    ):
        with pytest.raises(Unauthenticated):
            await call()


async def test_a_token_description_with_nul_is_refused(access: AccessService) -> None:
    grants = {"default": frozenset({Role.WORKER})}
    with pytest.raises(InvalidArgument) as raised:
        await access.create_token(ADMIN, "ann", grants, description="ci\x00")
    assert raised.value.field == "description"


async def test_a_new_password_ends_the_sessions_of_the_old_one(
    access: AccessService, manual_clock: ManualClock
) -> None:
    await access.add_user(ADMIN, "ann", "pw-one", {"default": frozenset({Role.PRODUCER})})
    old = await access.authenticate_password("ann", "pw-one")
    await access.set_password(ADMIN, "ann", "pw-two")
    assert not access.is_live(old)  # at once on this server
    replica = AccessService(access.store, enabled=True, clock=manual_clock)
    assert replica.is_live(old)  # another replica trusts it...
    manual_clock.advance(LIVE_RECHECK)
    replica.is_live(old)
    await asyncio.sleep(0.01)
    assert not replica.is_live(old)  # ...until it reads the user again
    assert access.is_live(await access.authenticate_password("ann", "pw-two"))
