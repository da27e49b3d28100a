from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
import grpc.aio

from shoal.core.auth import Principal, Role, parse_grants
from shoal.core.errors import error_from_code
from shoal.core.identity import ApiToken, NamespaceInfo, User
from shoal.protocols.grpc.gen.shoal.v1 import admin_pb2, admin_pb2_grpc
from shoal.sdk._credentials import Credentials
from shoal.sdk._credentials import open_channel as sdk_open_channel


def is_remote(url: str) -> bool:
    """Whether `url` names a running server rather than a store."""
    return url.startswith(("grpc://", "grpcs://", "shoal://", "shoals://"))


def open_channel(url: str) -> grpc.aio.Channel:
    """A channel to `grpc://host:port` or `grpcs://host:port`, with the credentials of
    `$SHOAL_TOKEN`, `$SHOAL_CA`, `$SHOAL_CERT` and `$SHOAL_KEY` (the SDK's, so the CLI and
    programs authenticate the same way).
    """
    return sdk_open_channel(url, Credentials.from_env())


def _grants_pb(grants: Mapping[str, frozenset[Role]]) -> dict[str, admin_pb2.Roles]:
    return {
        ns: admin_pb2.Roles(roles=sorted(r.value for r in roles)) for ns, roles in grants.items()
    }


def _grants(grants: Mapping[str, admin_pb2.Roles]) -> dict[str, frozenset[Role]]:
    return parse_grants({ns: list(roles.roles) for ns, roles in grants.items()})


def _token(message: admin_pb2.Token) -> ApiToken:
    return ApiToken(
        id=message.id,
        owner=message.owner,
        token_hash="",
        grants=_grants(message.grants),
        created_at=message.created_at,
        expires_at=message.expires_at if message.HasField("expires_at") else None,
        revoked_at=message.revoked_at if message.HasField("revoked_at") else None,
        description=message.description,
    )


class RemoteAccess:
    """The identity operations of `AccessService`, done by a running server's AdminService as
    the holder of `$SHOAL_TOKEN` (or of the client certificate). The actor arguments are
    ignored: the server knows who calls.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        # The channel carries the token (see `open_channel`).
        self._stub: Any = admin_pb2_grpc.AdminServiceStub(channel)  # type: ignore[no-untyped-call]

    async def _call(self, method: Callable[..., Awaitable[Any]], request: Any) -> Any:
        try:
            return await method(request, timeout=30)
        except grpc.aio.AioRpcError as error:
            pairs: Any = error.trailing_metadata() or ()  # aio Metadata: (key, value) pairs
            code = {key: value for key, value in pairs}.get("shoal-error-code")
            message = error.details() or error.code().name
            raise error_from_code(str(code or "unavailable"), message) from None

    async def add_user(
        self, actor: Principal, name: str, password: str, grants: Mapping[str, frozenset[Role]]
    ) -> User:
        request = admin_pb2.AddUserRequest(name=name, password=password, grants=_grants_pb(grants))
        reply = await self._call(self._stub.AddUser, request)
        return User(reply.name, "", _grants(reply.grants), reply.created_at)

    async def set_password(self, actor: Principal, name: str, password: str) -> None:
        await self._call(
            self._stub.SetPassword, admin_pb2.SetPasswordRequest(name=name, password=password)
        )

    async def remove_user(self, actor: Principal, name: str) -> None:
        await self._call(self._stub.RemoveUser, admin_pb2.RemoveUserRequest(name=name))

    async def list_users(self, actor: Principal) -> list[User]:
        reply = await self._call(self._stub.ListUsers, admin_pb2.ListUsersRequest())
        return [User(u.name, "", _grants(u.grants), u.created_at) for u in reply.users]

    async def create_token(
        self,
        actor: Principal,
        owner: str,
        grants: Mapping[str, frozenset[Role]],
        expires_in: float | None = None,
        description: str = "",
    ) -> tuple[ApiToken, str]:
        request = admin_pb2.CreateTokenRequest(
            owner=owner, grants=_grants_pb(grants), description=description
        )
        if expires_in is not None:
            request.expires_in = expires_in
        reply = await self._call(self._stub.CreateToken, request)
        return _token(reply.record), str(reply.token)

    async def list_tokens(self, actor: Principal, owner: str | None = None) -> list[ApiToken]:
        request = admin_pb2.ListTokensRequest(owner=owner or "")
        return [_token(t) for t in (await self._call(self._stub.ListTokens, request)).tokens]

    async def revoke_token(self, actor: Principal, token_id: str) -> ApiToken:
        request = admin_pb2.RevokeTokenRequest(id=token_id)
        return _token(await self._call(self._stub.RevokeToken, request))

    async def create_namespace(
        self, actor: Principal, name: str, description: str = ""
    ) -> NamespaceInfo:
        request = admin_pb2.CreateNamespaceRequest(name=name, description=description)
        reply = await self._call(self._stub.CreateNamespace, request)
        return NamespaceInfo(reply.name, reply.created_at, reply.description)

    async def list_namespaces(self, actor: Principal) -> list[NamespaceInfo]:
        reply = await self._call(self._stub.ListNamespaces, admin_pb2.ListNamespacesRequest())
        return [NamespaceInfo(n.name, n.created_at, n.description) for n in reply.namespaces]

    async def delete_namespace(
        self, actor: Principal, name: str, count_jobs: object, force: bool = False
    ) -> None:
        request = admin_pb2.DeleteNamespaceRequest(name=name, force=force)
        await self._call(self._stub.DeleteNamespace, request)
