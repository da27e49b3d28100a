"""`AccessService`: authentication, the management of namespaces, users and tokens, and the audit.

Surfaces turn credentials into a `Principal` here, and ask `require` before each service call.
Management calls take the acting principal, check it, and write an audit entry. A password or a
token never leaves this module except as a hash, and the plaintext of a new token exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache

from shoal.core._liveness import LIVE_RECHECK, Liveness, user_credential
from shoal.core.auth import (
    ALL_NAMESPACES,
    ANONYMOUS,
    Action,
    Authorizer,
    Principal,
    Role,
    hash_password,
    hash_token,
    new_api_token,
    verify_password,
)
from shoal.core.clock import Clock, SystemClock
from shoal.core.errors import Conflict, InvalidArgument, NotFound, Unauthenticated
from shoal.core.events import Event, EventBus
from shoal.core.identity import ApiToken, AuditEntry, IdentityStore, NamespaceInfo, User
from shoal.core.ids import new_job_id
from shoal.core.validation import check_name, check_text

__all__ = ["LIVE_RECHECK", "AccessService", "LoginThrottle", "user_credential"]

logger = logging.getLogger(__name__)
_WRONG_LOGIN = "wrong user name or password"


@dataclass
class LoginThrottle:
    """Slows repeated failed logins per key (user name, peer address): each failure doubles the
    wait before the next attempt for that key, up to `max_delay`; a success clears it.
    """

    base_delay: float = 0.1
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        self._failures: dict[str, int] = {}

    def delay(self, key: str) -> float:
        """Seconds the next attempt for `key` must wait."""
        failures = self._failures.get(key, 0)
        return 0.0 if not failures else min(self.base_delay * 2 ** (failures - 1), self.max_delay)

    def record(self, key: str, ok: bool) -> None:
        """Count a failure, or forget the key after a success."""
        if ok:
            self._failures.pop(key, None)
        elif len(self._failures) < 100_000:  # bounded: a flood of names cannot exhaust memory
            self._failures[key] = self._failures.get(key, 0) + 1


class AccessService:
    """Who is calling, and may they; plus the admin operations on identities."""

    def __init__(
        self,
        store: IdentityStore,
        *,
        enabled: bool,
        authorizer: Authorizer | None = None,
        clock: Clock | None = None,
        throttle: LoginThrottle | None = None,
        events: EventBus | None = None,
        announce: Callable[[Event], None] | None = None,
    ) -> None:
        self.store = store
        #: When False (loopback without users), every caller is `ANONYMOUS` with every right.
        self.enabled = enabled
        self.authorizer = authorizer or Authorizer()
        self.clock: Clock = clock or SystemClock()
        self.throttle = throttle or LoginThrottle()
        #: Where a deleted namespace is told of (`namespace.deleted`): the server passes its
        #: `QueueService.events`, so that what keeps state per namespace can drop it.
        self.events = events or EventBus()
        #: How it is told: published on `events`, unless the server passes
        #: `QueueService.publish_everywhere`, which tells the other replicas too.
        self._announce = announce or self.events.publish
        self._liveness = Liveness(store, self.clock)
        self.authorizer.live = self._liveness.is_live

    # --- authentication ---------------------------------------------------------------------

    def anonymous(self) -> Principal:
        """The principal of a caller without credentials; `Unauthenticated` when auth is on."""
        if self.enabled:
            raise Unauthenticated("credentials are required")
        return ANONYMOUS

    async def authenticate_password(self, name: str, password: str, peer: str = "") -> Principal:
        """A user's principal, or `Unauthenticated` (the same message whether the name or the
        password was wrong). Repeated failures for a name or a peer are slowed down.
        """
        await self._throttle(name, peer)
        user = await self.store.get_user(name)
        # Hash even for an unknown user, so timing does not tell which names exist.
        ok = verify_password(password, user.password_hash if user else _dummy_hash())
        ok = ok and user is not None
        self._record(name, peer, ok)
        if not ok or user is None:
            logger.info("login failed", extra={"event": "auth.failed", "user": name, "peer": peer})
            raise Unauthenticated(_WRONG_LOGIN)
        principal = Principal(user.name, "password", user.grants, user_credential(user))
        return self._liveness.verified(principal)

    async def authenticate_token(self, token: str, peer: str = "") -> Principal:
        """The principal of a usable API token, or `Unauthenticated`."""
        await self._throttle("", peer)
        record = await self.store.find_token(hash_token(token))
        ok = record is not None and record.usable(self.clock.now())
        self._record("", peer, ok)
        if not ok or record is None:
            logger.info("token refused", extra={"event": "auth.failed", "peer": peer})
            raise Unauthenticated("the token is not valid (unknown, expired or revoked)")
        name = f"{record.owner}/token:{record.id}"
        return self._liveness.verified(Principal(name, "token", record.grants, record.token_hash))

    def is_live(self, principal: Principal) -> bool:
        """Whether the credentials behind `principal` are still usable (see `Liveness`)."""
        return self._liveness.is_live(principal)

    def verified(self, principal: Principal) -> Principal:
        """`principal`, which a surface just checked against the store itself (a client
        certificate's user): `is_live` trusts it from now.
        """
        return self._liveness.verified(principal)

    def require(self, principal: Principal, action: Action, namespace: str) -> None:
        """`PermissionDenied` unless `principal` may do `action` in `namespace`."""
        self.authorizer.require(principal, action, namespace)

    async def _throttle(self, name: str, peer: str) -> None:
        wait = max(self.throttle.delay(f"user:{name}"), self.throttle.delay(f"peer:{peer}"))
        if wait:
            await asyncio.sleep(wait)

    def _record(self, name: str, peer: str, ok: bool) -> None:
        if name:
            self.throttle.record(f"user:{name}", ok)
        if peer:
            self.throttle.record(f"peer:{peer}", ok)

    # --- users and tokens -------------------------------------------------------------------

    async def declare_user(
        self, name: str, password_hash: str, grants: Mapping[str, frozenset[Role]]
    ) -> User:
        """Create or update a user from configuration (no actor, no audit)."""
        check_name("name", name)
        if not password_hash.startswith("scrypt$"):
            raise InvalidArgument("password_hash", "must be a hash made by `shoal users hash`")
        existing = await self.store.get_user(name)
        created = existing.created_at if existing else self.clock.now()
        user = User(name, password_hash, dict(grants), created)
        await self.store.save_user(user)
        return user

    async def add_user(
        self, actor: Principal, name: str, password: str, grants: Mapping[str, frozenset[Role]]
    ) -> User:
        """Create a user; `Conflict` if the name is taken."""
        self._require_all(actor, grants)
        if await self.store.get_user(check_name("name", name)) is not None:
            raise Conflict(f"user {name!r} exists")
        user = User(name, hash_password(password), dict(grants), self.clock.now())
        await self.store.save_user(user)
        await self._audit(actor, "user.add", ALL_NAMESPACES, name)
        return user

    async def set_password(self, actor: Principal, name: str, password: str) -> None:
        """Change a user's password (the user itself, or a global admin)."""
        user = await self._user(name)
        if actor.name != name:
            self.require(actor, Action.MANAGE_USERS, ALL_NAMESPACES)
        await self.store.save_user(
            User(user.name, hash_password(password), user.grants, user.created_at)
        )
        # sessions opened with the old password end (at once here, on other replicas soon)
        self._liveness.revoke(("password", name, user_credential(user)))
        await self._audit(actor, "user.passwd", ALL_NAMESPACES, name)

    async def remove_user(self, actor: Principal, name: str) -> None:
        """Delete a user and revoke its tokens."""
        self.require(actor, Action.MANAGE_USERS, ALL_NAMESPACES)
        user = await self._user(name)
        now = self.clock.now()
        tokens = await self.store.list_tokens(name)
        for token in tokens:
            if token.revoked_at is None:
                await self.store.save_token(_revoked(token, now))
        await self.store.delete_user(name)
        self._liveness.revoke(
            ("password", name, user_credential(user)),
            ("certificate", name, user_credential(user, "certificate")),
            *(("token", token.owner, token.token_hash) for token in tokens),
        )
        await self._audit(actor, "user.remove", ALL_NAMESPACES, name)

    async def list_users(self, actor: Principal) -> list[User]:
        """Every user (global admins only)."""
        self.require(actor, Action.MANAGE_USERS, ALL_NAMESPACES)
        return await self.store.list_users()

    async def create_token(
        self,
        actor: Principal,
        owner: str,
        grants: Mapping[str, frozenset[Role]],
        expires_in: float | None = None,
        description: str = "",
    ) -> tuple[ApiToken, str]:
        """A new token and its plaintext, which is shown this once and never stored."""
        self._require_all(actor, grants)
        check_text("description", description)  # PostgreSQL's text holds no NUL
        if expires_in is not None and not 0 < expires_in < math.inf:  # NaN too
            raise InvalidArgument("expires_in", "must be a positive number of seconds")
        now = self.clock.now()
        plaintext = new_api_token()
        token = ApiToken(
            id=new_job_id()[-12:],
            owner=check_name("owner", owner),
            token_hash=hash_token(plaintext),
            grants=dict(grants),
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
            description=description,
        )
        await self.store.save_token(token)
        await self._audit(actor, "token.create", ALL_NAMESPACES, token.id, owner=owner)
        return token, plaintext

    async def list_tokens(self, actor: Principal, owner: str | None = None) -> list[ApiToken]:
        """Token records (hashes only), of one owner or all."""
        self.require(actor, Action.MANAGE_USERS, ALL_NAMESPACES)
        return await self.store.list_tokens(owner)

    async def revoke_token(self, actor: Principal, token_id: str) -> ApiToken:
        """Revoke a token at once."""
        self.require(actor, Action.MANAGE_USERS, ALL_NAMESPACES)
        for token in await self.store.list_tokens():
            if token.id == token_id:
                revoked = _revoked(token, self.clock.now())
                await self.store.save_token(revoked)
                self._liveness.revoke(("token", token.owner, token.token_hash))
                await self._audit(actor, "token.revoke", ALL_NAMESPACES, token_id)
                return revoked
        raise NotFound(f"token {token_id} not found")

    # --- namespaces and audit ---------------------------------------------------------------

    async def create_namespace(
        self, actor: Principal, name: str, description: str = ""
    ) -> NamespaceInfo:
        """Create a namespace (global admins)."""
        self.require(actor, Action.MANAGE_NAMESPACES, ALL_NAMESPACES)
        namespace = NamespaceInfo(check_name("namespace", name), self.clock.now(), description)
        await self.store.create_namespace(namespace)
        await self._audit(actor, "namespace.create", name, name)
        return namespace

    async def list_namespaces(self, actor: Principal) -> list[NamespaceInfo]:
        """The namespaces `actor` may read."""
        return [
            namespace
            for namespace in await self.store.list_namespaces()
            if self.authorizer.allows(actor, Action.READ, namespace.name)
        ]

    async def delete_namespace(
        self,
        actor: Principal,
        name: str,
        count_jobs: Callable[[str], Awaitable[int]],
        force: bool = False,
    ) -> None:
        """Delete a namespace; refused while it holds jobs, unless `force` (its jobs stay).

        Announces `namespace.deleted` once the store deleted it (see `announce`).
        """
        self.require(actor, Action.MANAGE_NAMESPACES, ALL_NAMESPACES)
        jobs = await count_jobs(name)
        if jobs and not force:
            raise Conflict(f"namespace {name!r} holds {jobs} jobs; delete them or force")
        await self.store.delete_namespace(name)
        self._announce(Event("namespace.deleted", name, self.clock.now()))
        await self._audit(actor, "namespace.delete", name, name, jobs=str(jobs))

    async def audit_log(
        self, actor: Principal, limit: int = 100, namespace: str | None = None
    ) -> list[AuditEntry]:
        """Recent admin actions, newest first."""
        self.require(actor, Action.READ_AUDIT, namespace or ALL_NAMESPACES)
        if not 1 <= limit <= 1000:
            raise InvalidArgument("limit", "must be between 1 and 1000")
        return await self.store.list_audit(limit, namespace)

    async def purge_audit(self, older_than: float, limit: int) -> int:
        """Delete up to `limit` of the entries made more than `older_than` seconds ago, the
        oldest first; how many. The server's maintenance runs it in batches, as retention,
        when `auth.audit_retention` is set.
        """
        return await self.store.purge_audit(self.clock.now() - older_than, limit)

    async def record(self, actor: Principal, action: str, namespace: str, target: str) -> None:
        """Audit an admin action done through another service (queue purge, worker kick...)."""
        await self._audit(actor, action, namespace, target)

    # --- helpers ----------------------------------------------------------------------------

    def _require_all(self, actor: Principal, grants: Mapping[str, frozenset[Role]]) -> None:
        if not grants:
            raise InvalidArgument("grants", "give at least one namespace and role")
        for namespace in grants:
            self.require(actor, Action.MANAGE_USERS, namespace)

    async def _user(self, name: str) -> User:
        user = await self.store.get_user(name)
        if user is None:
            raise NotFound(f"user {name!r} not found")
        return user

    async def _audit(
        self, actor: Principal, action: str, namespace: str, target: str, **detail: str
    ) -> None:
        entry = AuditEntry(self.clock.now(), actor.name, action, namespace, target, detail)
        await self.store.append_audit(entry)
        logger.info(
            "audit %s %s by %s",
            action,
            target,
            actor.name,
            extra={"event": "audit." + action, "actor": actor.name, "target": target},
        )


def _revoked(token: ApiToken, now: float) -> ApiToken:
    return replace(token, revoked_at=now)


@cache
def _dummy_hash() -> str:
    """Checked when the user does not exist, so a wrong name costs what a wrong password does."""
    return hash_password("shoal-dummy-password-for-timing")
