"""Who may do what: principals, roles per namespace, actions, and secrets kept only as hashes.

Every surface authenticates a caller into a `Principal`, then asks `Authorizer.allows(principal,
action, namespace)` before calling the service; the table `ROLE_ACTIONS` is the one place that says
which role may do which action, so gRPC, HTTP, TCP and the dashboard cannot disagree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shoal.core.errors import InvalidArgument, PermissionDenied, Unauthenticated

__all__ = [
    "ALL_NAMESPACES",
    "ANONYMOUS",
    "ROLE_ACTIONS",
    "Action",
    "Authorizer",
    "AuthorizerHook",
    "Principal",
    "Role",
    "hash_password",
    "hash_token",
    "new_api_token",
    "parse_grants",
    "verify_password",
]

#: A grant on this namespace applies to every namespace.
ALL_NAMESPACES = "*"


class Role(StrEnum):
    """What a principal may do in a namespace."""

    #: Everything, including queues, workers, schedules, namespaces, users and tokens.
    ADMIN = "admin"
    #: Enqueue and steer jobs (cancel, retry), and read.
    PRODUCER = "producer"
    #: Take and work jobs, and read.
    WORKER = "worker"
    #: Read only.
    VIEWER = "viewer"


class Action(StrEnum):
    """An operation as the authorizer sees it; each service method maps to one."""

    READ = "read"
    ENQUEUE = "enqueue"
    STEER_JOB = "steer_job"
    DELETE_JOB = "delete_job"
    WORK = "work"
    MANAGE_QUEUES = "manage_queues"
    MANAGE_WORKERS = "manage_workers"
    MANAGE_SCHEDULES = "manage_schedules"
    MANAGE_NAMESPACES = "manage_namespaces"
    MANAGE_USERS = "manage_users"
    READ_AUDIT = "read_audit"


_READERS = frozenset({Action.READ})
ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.VIEWER: _READERS,
    Role.WORKER: _READERS | {Action.WORK},
    Role.PRODUCER: _READERS | {Action.ENQUEUE, Action.STEER_JOB},
    Role.ADMIN: frozenset(Action),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and its grants: namespace (or `*`) -> roles."""

    name: str
    #: How it proved itself: `password`, `token`, `certificate`, or `anonymous`.
    method: str
    grants: Mapping[str, frozenset[Role]] = field(default_factory=dict)
    #: For a token, its hash (never the token): what `AccessService.check_live` looks up.
    credential: str = field(default="", repr=False, compare=False)

    def roles_in(self, namespace: str) -> frozenset[Role]:
        """The roles this principal holds in `namespace` (including `*` grants)."""
        return self.grants.get(namespace, frozenset()) | self.grants.get(
            ALL_NAMESPACES, frozenset()
        )

    def namespaces(self) -> frozenset[str]:
        """The namespaces named in its grants (`*` included as such)."""
        return frozenset(self.grants)


#: The caller when authentication is off (listening on loopback without users): may do anything.
ANONYMOUS = Principal("anonymous", "anonymous", {ALL_NAMESPACES: frozenset({Role.ADMIN})})

#: A refinement of the role decision: (principal, action, namespace, decision) -> decision.
AuthorizerHook = Callable[[Principal, Action, str, bool], bool]


class Authorizer:
    """Role-based decisions, optionally refined by a hook (the config names a callable)."""

    def __init__(self, hook: AuthorizerHook | None = None) -> None:
        self.hook = hook
        #: Whether the credentials behind a principal are still usable (`AccessService.is_live`
        #: sets it): a principal outlives its request in a session or a stream.
        self.live: Callable[[Principal], bool] | None = None

    def allows(self, principal: Principal, action: Action, namespace: str) -> bool:
        """Whether `principal` may do `action` in `namespace`."""
        if not self.is_live(principal):
            return False
        decision = any(action in ROLE_ACTIONS[role] for role in principal.roles_in(namespace))
        if self.hook is not None:
            decision = bool(self.hook(principal, action, namespace, decision))
        return decision

    def is_live(self, principal: Principal) -> bool:
        """Whether the principal's credentials are still usable (see `live`)."""
        return self.live is None or self.live(principal)

    def require_live(self, principal: Principal) -> None:
        """Raise `Unauthenticated` once the principal's credentials were revoked or expired."""
        if not self.is_live(principal):
            raise Unauthenticated("the credentials of this session were revoked or expired")

    def require(self, principal: Principal, action: Action, namespace: str) -> None:
        """Raise `PermissionDenied` unless allowed (`Unauthenticated` once the principal's
        credentials were revoked).
        """
        self.require_live(principal)
        if not self.allows(principal, action, namespace):
            raise PermissionDenied(
                f"{principal.name} may not {action.value} in namespace {namespace!r}"
            )


def parse_grants(spec: Mapping[str, object]) -> dict[str, frozenset[Role]]:
    """Grants from configuration: `{"default": ["producer"], "*": "viewer"}`."""
    grants: dict[str, frozenset[Role]] = {}
    for namespace, roles in spec.items():
        names = [roles] if isinstance(roles, str) else roles
        if not isinstance(names, list | tuple) or not names:
            raise InvalidArgument("roles", f"give a role or a list of roles for {namespace!r}")
        try:
            grants[namespace] = frozenset(Role(str(name)) for name in names)
        except ValueError:
            choices = ", ".join(role.value for role in Role)
            raise InvalidArgument("roles", f"unknown role in {names!r}; one of {choices}") from None
    return grants


# --- secrets ---------------------------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_TOKEN_PREFIX = "shoal_"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A salted scrypt hash, self-describing: `scrypt$n$r$p$salt$hash` (base64 parts)."""
    if not password:
        raise InvalidArgument("password", "must not be empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches a hash made by `hash_password`; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_api_token() -> str:
    """A new API token (shown to its owner once): a prefix and 256 random bits."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """How a token is stored and looked up. Tokens are random, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()
