"""Who is calling over gRPC, and the service as that caller may use it.

`Authenticating` wraps every method of the shoal and compatibility services: before the method
runs it turns the call's credentials into a `Principal` (a bearer token or HTTP-style basic
user:password in the `authorization` metadata, else the common name of a verified mutual-TLS
client certificate, else anonymous, which `AccessService` refuses when authentication is on)
and keeps it in a context variable for the call. Servicers then reach the service only through
`Callers.service()`: a `GuardedService` for that principal. Health and reflection stay open,
as load balancers and grpcurl use them before any credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
import grpc.aio

from shoal.core.access import AccessService, user_credential
from shoal.core.auth import Action, Principal
from shoal.core.clock import Clock
from shoal.core.errors import ShoalError, Unauthenticated
from shoal.core.events import EventBus
from shoal.core.guard import GuardedService
from shoal.core.model import DEFAULT_NAMESPACE, Job
from shoal.core.schedules import GuardedSchedules, ScheduleApi
from shoal.core.service import QueueService, ServiceSettings
from shoal.protocols.grpc._status import abort

__all__ = ["Authenticating", "CallerService", "Callers"]

Context = grpc.aio.ServicerContext[Any, Any]
_CALLER: ContextVar[Principal | None] = ContextVar("shoal_grpc_caller", default=None)
#: Methods served to anyone (prefixes of the full method name).
_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")
#: go-work's services act for the whole cluster in the default namespace (its members both
#: schedule and run tasks), so a caller needs both rights there, checked once per call.
_CLUSTER = ("/cluster.v1.LeaderService/", "/scheduler.v1.SchedulerService/")
_CLUSTER_RIGHTS = (Action.ENQUEUE, Action.WORK)


def current_principal() -> Principal:
    """The principal of the call being served (`Unauthenticated` outside an authenticated call)."""
    principal = _CALLER.get()
    if principal is None:
        raise Unauthenticated("credentials are required")
    return principal


class CallerService(GuardedService):
    """`GuardedService` plus what a session needs that is not an operation on jobs."""

    @property
    def settings(self) -> ServiceSettings:
        """The service's settings."""
        return self.service.settings

    @property
    def clock(self) -> Clock:
        """The service's clock."""
        return self.service.clock

    @property
    def events(self) -> EventBus:
        """The service's event bus (subscribers filter what the caller may read)."""
        return self.service.events

    async def worker_gone(self, worker_id: str, reason: str) -> list[Job]:
        """`QueueService.worker_gone`: a session of this caller ended."""
        return await self.service.worker_gone(worker_id, reason)


class Callers:
    """The service, the schedules and the audit, for the principal of the current call."""

    def __init__(self, service: QueueService, access: AccessService) -> None:
        self._service = service
        self.access = access

    def principal(self) -> Principal:
        """The current call's principal."""
        return current_principal()

    def service(self) -> CallerService:
        """The service as the current caller may use it."""
        return CallerService(self._service, current_principal(), self.access.authorizer)

    def schedules(self, api: ScheduleApi) -> GuardedSchedules:
        """The schedules as the current caller may use them."""
        return GuardedSchedules(api, current_principal(), self.access.authorizer)

    def allows(self, action: Action, namespace: str) -> bool:
        """Whether the current caller may do `action` in `namespace`."""
        return self.access.authorizer.allows(current_principal(), action, namespace)

    async def audit(self, action: str, namespace: str, target: str) -> None:
        """Record an admin action of the current caller."""
        await self.access.record(current_principal(), action, namespace, target)


def _peer_host(context: Context) -> str:
    # "ipv4:127.0.0.1:53412" -> "ipv4:127.0.0.1": failed logins are slowed per host.
    return context.peer().rpartition(":")[0]


def _authorization(context: Context) -> str:
    header = ""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            header = str(value).strip()
    return header


async def authenticate(access: AccessService, context: Context) -> Principal:
    """The principal of a call's credentials (see the module docstring)."""
    header = _authorization(context)
    if not header:
        names = list((context.auth_context() or {}).get("x509_common_name") or [])
        if not names:
            return access.anonymous()
        # The TLS layer verified the certificate against the configured client CA.
        name = names[0].decode() if isinstance(names[0], bytes) else str(names[0])
        user = await access.store.get_user(name)
        if user is None:
            raise Unauthenticated(f"no user {name!r} for this client certificate")
        return access.verified(
            Principal(user.name, "certificate", user.grants, user_credential(user, "certificate"))
        )
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return await access.authenticate_token(credentials.strip(), _peer_host(context))
    if scheme.lower() == "basic" and credentials:
        try:
            name, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed basic credentials") from None
        return await access.authenticate_password(name, password, _peer_host(context))
    raise Unauthenticated("authorization must be `Bearer <token>` or `Basic <user:password>`")


Behaviour = Callable[[Any, Context], Any]
#: How long a refused stream waits for the client's first message (`_take_first_message`).
_FIRST_MESSAGE_WAIT = 1.0


class Authenticating(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates each call before its method runs (see the module docstring)."""

    def __init__(self, access: AccessService) -> None:
        self._access = access
        # The wrapped handler per method (the continuation hands back the same handler for a
        # method each time; wrapping it anew cost every call closures and a namedtuple copy).
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = str(getattr(handler_call_details, "method", ""))
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        if handler is not None:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler is None or method.startswith(_OPEN):
            return handler
        rights = _CLUSTER_RIGHTS if method.startswith(_CLUSTER) else ()
        for kind in ("unary_unary", "stream_unary"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return handler._replace(**{kind: self._unary(behaviour, rights)})
        for kind in ("unary_stream", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return handler._replace(**{kind: self._streaming(behaviour, rights)})
        return handler

    async def _enter(self, context: Context, rights: tuple[Action, ...], request: Any) -> None:
        # Each call runs in its own task (so its own copy of the context): nothing to reset.
        try:
            principal = await authenticate(self._access, context)
            for action in rights:
                self._access.require(principal, action, DEFAULT_NAMESPACE)
        except ShoalError as error:
            await _take_first_message(request)
            await abort(context, error)
        _CALLER.set(principal)

    def _unary(self, behaviour: Behaviour, rights: tuple[Action, ...]) -> Behaviour:
        async def authenticated(request: Any, context: Context) -> Any:
            await self._enter(context, rights, request)
            return await behaviour(request, context)

        return authenticated

    def _streaming(self, behaviour: Behaviour, rights: tuple[Action, ...]) -> Behaviour:
        async def authenticated(request: Any, context: Context) -> AsyncIterator[Any]:
            await self._enter(context, rights, request)
            async for item in behaviour(request, context):
                yield item

        return authenticated


async def _take_first_message(request: Any) -> None:
    """Read a refused stream's first message (briefly) before the refusal.

    A client's first write (a worker's hello) that is still in flight when the call ends fails
    on the client, and grpcio then reports INTERNAL ("Failed execute_batch") instead of the
    server's status: 3 refusals in 60 did. Once the server has read it, that write is done.
    """
    if not hasattr(request, "__aiter__"):
        return  # a unary request has arrived whole
    with contextlib.suppress(Exception):
        await asyncio.wait_for(anext(aiter(request)), _FIRST_MESSAGE_WAIT)
