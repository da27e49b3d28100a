"""`shoal.v1.AdminService`: namespaces, users, API tokens and the audit log.

Each method decodes, calls one `AccessService` method as the call's principal (which checks the
right and writes the audit), and encodes. No reply carries a password or a token hash; a
token's plaintext appears once, in CreateToken's reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc.aio

from shoal.core.auth import Role, parse_grants
from shoal.core.identity import ApiToken, NamespaceInfo, User
from shoal.core.service import QueueService
from shoal.protocols.grpc._auth import Callers
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.shoal.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


def _grants_to_pb(grants: Mapping[str, frozenset[Role]]) -> dict[str, admin_pb2.Roles]:
    return {
        namespace: admin_pb2.Roles(roles=sorted(role.value for role in roles))
        for namespace, roles in grants.items()
    }


def _grants_from_pb(grants: Mapping[str, admin_pb2.Roles]) -> dict[str, frozenset[Role]]:
    return parse_grants({namespace: list(roles.roles) for namespace, roles in grants.items()})


def _namespace_to_pb(item: NamespaceInfo) -> admin_pb2.Namespace:
    return admin_pb2.Namespace(
        name=item.name, created_at=item.created_at, description=item.description
    )


def _user_to_pb(user: User) -> admin_pb2.User:
    return admin_pb2.User(
        name=user.name, grants=_grants_to_pb(user.grants), created_at=user.created_at
    )


def _token_to_pb(token: ApiToken) -> admin_pb2.Token:
    message = admin_pb2.Token(
        id=token.id,
        owner=token.owner,
        grants=_grants_to_pb(token.grants),
        created_at=token.created_at,
        description=token.description,
    )
    if token.expires_at is not None:
        message.expires_at = token.expires_at
    if token.revoked_at is not None:
        message.revoked_at = token.revoked_at
    return message


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Identities, through `AccessService` as the call's principal."""

    def __init__(self, service: QueueService, callers: Callers) -> None:
        self._service = service
        self._callers = callers

    @mapped
    async def WhoAmI(
        self, request: admin_pb2.WhoAmIRequest, context: Context
    ) -> admin_pb2.Principal:
        """The caller."""
        principal = self._callers.principal()
        return admin_pb2.Principal(
            name=principal.name, method=principal.method, grants=_grants_to_pb(principal.grants)
        )

    @mapped
    async def CreateNamespace(
        self, request: admin_pb2.CreateNamespaceRequest, context: Context
    ) -> admin_pb2.Namespace:
        """Create a namespace."""
        access, actor = self._callers.access, self._callers.principal()
        return _namespace_to_pb(
            await access.create_namespace(actor, request.name, request.description)
        )

    @mapped
    async def ListNamespaces(
        self, request: admin_pb2.ListNamespacesRequest, context: Context
    ) -> admin_pb2.ListNamespacesResponse:
        """The namespaces the caller may read."""
        items = await self._callers.access.list_namespaces(self._callers.principal())
        return admin_pb2.ListNamespacesResponse(namespaces=[_namespace_to_pb(n) for n in items])

    @mapped
    async def DeleteNamespace(
        self, request: admin_pb2.DeleteNamespaceRequest, context: Context
    ) -> admin_pb2.DeleteNamespaceResponse:
        """Delete a namespace (refused while it holds jobs, unless forced)."""

        async def count(namespace: str) -> int:
            return (await self._service.stats(namespace)).total

        await self._callers.access.delete_namespace(
            self._callers.principal(), request.name, count, request.force
        )
        return admin_pb2.DeleteNamespaceResponse()

    @mapped
    async def AddUser(self, request: admin_pb2.AddUserRequest, context: Context) -> admin_pb2.User:
        """Create a user."""
        user = await self._callers.access.add_user(
            self._callers.principal(),
            request.name,
            request.password,
            _grants_from_pb(request.grants),
        )
        return _user_to_pb(user)

    @mapped
    async def ListUsers(
        self, request: admin_pb2.ListUsersRequest, context: Context
    ) -> admin_pb2.ListUsersResponse:
        """Every user."""
        users = await self._callers.access.list_users(self._callers.principal())
        return admin_pb2.ListUsersResponse(users=[_user_to_pb(user) for user in users])

    @mapped
    async def SetPassword(
        self, request: admin_pb2.SetPasswordRequest, context: Context
    ) -> admin_pb2.SetPasswordResponse:
        """A user's new password."""
        await self._callers.access.set_password(
            self._callers.principal(), request.name, request.password
        )
        return admin_pb2.SetPasswordResponse()

    @mapped
    async def RemoveUser(
        self, request: admin_pb2.RemoveUserRequest, context: Context
    ) -> admin_pb2.RemoveUserResponse:
        """Delete a user and revoke its tokens."""
        await self._callers.access.remove_user(self._callers.principal(), request.name)
        return admin_pb2.RemoveUserResponse()

    @mapped
    async def CreateToken(
        self, request: admin_pb2.CreateTokenRequest, context: Context
    ) -> admin_pb2.CreateTokenResponse:
        """A new token and, this once, its plaintext."""
        token, plaintext = await self._callers.access.create_token(
            self._callers.principal(),
            request.owner,
            _grants_from_pb(request.grants),
            request.expires_in if request.HasField("expires_in") else None,
            request.description,
        )
        return admin_pb2.CreateTokenResponse(record=_token_to_pb(token), token=plaintext)

    @mapped
    async def ListTokens(
        self, request: admin_pb2.ListTokensRequest, context: Context
    ) -> admin_pb2.ListTokensResponse:
        """Token records."""
        tokens = await self._callers.access.list_tokens(
            self._callers.principal(), request.owner or None
        )
        return admin_pb2.ListTokensResponse(tokens=[_token_to_pb(token) for token in tokens])

    @mapped
    async def RevokeToken(
        self, request: admin_pb2.RevokeTokenRequest, context: Context
    ) -> admin_pb2.Token:
        """Revoke a token at once."""
        token = await self._callers.access.revoke_token(self._callers.principal(), request.id)
        return _token_to_pb(token)

    @mapped
    async def ListAudit(
        self, request: admin_pb2.ListAuditRequest, context: Context
    ) -> admin_pb2.ListAuditResponse:
        """Recent admin actions, newest first."""
        entries = await self._callers.access.audit_log(
            self._callers.principal(), request.limit or 100, request.namespace or None
        )
        return admin_pb2.ListAuditResponse(
            entries=[
                admin_pb2.AuditEntry(
                    at=entry.at,
                    actor=entry.actor,
                    action=entry.action,
                    namespace=entry.namespace,
                    target=entry.target,
                    detail=dict(entry.detail),
                )
                for entry in entries
            ]
        )
