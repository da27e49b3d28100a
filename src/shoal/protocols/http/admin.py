"""Identities under /api/v1: namespaces (create, delete), users, API tokens, the audit log, and
`/me` (who the caller is). Every call goes through `AccessService`, which checks the caller's
rights and writes the audit; no reply carries a password or a token hash, and a token's
plaintext appears once, in the reply that creates it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shoal.core.auth import Principal, Role, parse_grants
from shoal.core.identity import ApiToken, AuditEntry, NamespaceInfo, User

from ._auth import current_caller
from ._params import State
from .errors import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["admin"], responses=ERROR_RESPONSES)

Name = Annotated[str, Path(min_length=1, max_length=200)]
Grants = dict[str, list[str]]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NamespaceIn(_In):
    """A new namespace."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)


class NamespaceOut(BaseModel):
    """A namespace."""

    name: str
    created_at: float
    description: str


class UserIn(_In):
    """A new user: its password (stored hashed) and grants (namespace -> roles)."""

    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=1000)
    grants: Grants


class PasswordIn(_In):
    """A new password."""

    password: str = Field(min_length=8, max_length=1000)


class UserOut(BaseModel):
    """A user, without its password hash."""

    name: str
    grants: Grants
    created_at: float


class TokenIn(_In):
    """A new API token for `owner`, scoped by `grants`, expiring after `expires_in` seconds."""

    owner: str = Field(min_length=1, max_length=200)
    grants: Grants
    expires_in: float | None = Field(default=None, gt=0)
    description: str = Field(default="", max_length=1000)


class TokenOut(BaseModel):
    """A token's record: never the token, never its hash."""

    id: str
    owner: str
    grants: Grants
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    description: str


class NewTokenOut(TokenOut):
    """A new token; `token` is shown this once and cannot be read again."""

    token: str


class AuditOut(BaseModel):
    """One admin action."""

    at: float
    actor: str
    action: str
    namespace: str
    target: str
    detail: dict[str, str]


class MeOut(BaseModel):
    """The caller as the server sees it."""

    name: str
    method: str
    grants: Grants


def _grants_out(grants: object) -> Grants:
    assert isinstance(grants, dict)
    return {ns: sorted(role.value for role in roles) for ns, roles in grants.items()}


def _grants_in(grants: Grants) -> dict[str, frozenset[Role]]:
    return parse_grants(dict(grants))


def _namespace_out(item: NamespaceInfo) -> NamespaceOut:
    return NamespaceOut(name=item.name, created_at=item.created_at, description=item.description)


def _user_out(user: User) -> UserOut:
    return UserOut(
        name=user.name, grants=_grants_out(dict(user.grants)), created_at=user.created_at
    )


def _token_fields(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "owner": token.owner,
        "grants": _grants_out(dict(token.grants)),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "description": token.description,
    }


def _audit_out(entry: AuditEntry) -> AuditOut:
    return AuditOut(
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        namespace=entry.namespace,
        target=entry.target,
        detail=dict(entry.detail),
    )


def _me() -> Principal:
    return current_caller()


@router.get("/me", response_model=MeOut, summary="Who am I")
async def me() -> MeOut:
    """The caller's name, how it signed in, and its grants."""
    principal = _me()
    return MeOut(
        name=principal.name, method=principal.method, grants=_grants_out(dict(principal.grants))
    )


@router.post("/namespaces", status_code=201, response_model=NamespaceOut, summary="Create")
async def create_namespace(body: NamespaceIn, state: State) -> NamespaceOut:
    """Create a namespace (admins of `*`)."""
    return _namespace_out(await state.auth.create_namespace(_me(), body.name, body.description))


@router.delete("/namespaces/{name}", status_code=204, summary="Delete a namespace")
async def delete_namespace(
    name: Name, state: State, force: Annotated[bool, Query()] = False
) -> None:
    """Delete a namespace; refused (409) while it holds jobs, unless `force=true`."""

    async def count(namespace: str) -> int:
        stats = await state.service.stats(namespace)
        return stats.total

    # The recorder forgets it on the `namespace.deleted` event, as for every other surface.
    await state.auth.delete_namespace(_me(), name, count, force)


@router.get("/users", response_model=list[UserOut], summary="List users")
async def list_users(state: State) -> list[UserOut]:
    """Every user (admins of `*`)."""
    return [_user_out(user) for user in await state.auth.list_users(_me())]


@router.post("/users", status_code=201, response_model=UserOut, summary="Add a user")
async def add_user(body: UserIn, state: State) -> UserOut:
    """Create a user."""
    user = await state.auth.add_user(_me(), body.name, body.password, _grants_in(body.grants))
    return _user_out(user)


@router.put("/users/{name}/password", status_code=204, summary="Change a password")
async def set_password(name: Name, body: PasswordIn, state: State) -> None:
    """A user's new password (the user itself, or an admin of `*`)."""
    await state.auth.set_password(_me(), name, body.password)


@router.delete("/users/{name}", status_code=204, summary="Remove a user")
async def remove_user(name: Name, state: State) -> None:
    """Delete a user and revoke its tokens."""
    await state.auth.remove_user(_me(), name)


@router.get("/tokens", response_model=list[TokenOut], summary="List tokens")
async def list_tokens(
    state: State, owner: Annotated[str | None, Query(max_length=200)] = None
) -> list[TokenOut]:
    """Token records (never the tokens)."""
    tokens = await state.auth.list_tokens(_me(), owner)
    return [TokenOut.model_validate(_token_fields(token)) for token in tokens]


@router.post("/tokens", status_code=201, response_model=NewTokenOut, summary="Create a token")
async def create_token(body: TokenIn, state: State) -> NewTokenOut:
    """A new token: its plaintext is in this reply only."""
    token, plaintext = await state.auth.create_token(
        _me(), body.owner, _grants_in(body.grants), body.expires_in, body.description
    )
    return NewTokenOut.model_validate({**_token_fields(token), "token": plaintext})


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token")
async def revoke_token(token_id: Name, state: State) -> TokenOut:
    """Revoke a token at once."""
    return TokenOut.model_validate(_token_fields(await state.auth.revoke_token(_me(), token_id)))


@router.get("/audit", response_model=list[AuditOut], summary="The audit log")
async def audit(
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    namespace: Annotated[str | None, Query(max_length=200)] = None,
) -> list[AuditOut]:
    """Recent admin actions, newest first."""
    return [_audit_out(e) for e in await state.auth.audit_log(_me(), limit, namespace)]
