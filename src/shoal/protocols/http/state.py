"""What the HTTP app holds: the service, its settings, and the event recorder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from fastapi import Request

from shoal.core.access import AccessService
from shoal.core.auth import Action
from shoal.core.events import Subscription
from shoal.core.guard import GuardedService
from shoal.core.identity import IdentityStore
from shoal.core.model import DEFAULT_NAMESPACE
from shoal.core.schedules import GuardedSchedules, ScheduleApi
from shoal.core.service import QueueService
from shoal.core.validation import MAX_MESSAGE_BYTES

from ._audited import AuditedSchedules
from ._auth import Sessions, WebSession, authenticate, current_caller, set_caller

if TYPE_CHECKING:
    from ._counts import QueueCounts
    from ._recorder import Recorder

__all__ = ["HttpSettings", "HttpState", "get_state"]


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """How the HTTP surface behaves; the composition root fills it from configuration."""

    #: Longest long-poll a request may ask for (`?wait=`, fetch's `wait`), in seconds.
    max_wait: float = 60.0
    #: Seconds between keep-alive comments on an idle event stream.
    sse_keepalive: float = 15.0
    #: How long a dashboard sign-in lasts, in seconds.
    session_ttl: float = 12 * 3600.0
    #: Namespaces listed even before anything happens in them.
    namespaces: tuple[str, ...] = (DEFAULT_NAMESPACE,)
    #: Feed the charts, the histograms and counters of /metrics and the jobs' timelines from
    #: the event bus. It costs a few microseconds per lifecycle event on the service's hot
    #: path; a server tuned for raw throughput may turn it off.
    record_events: bool = True
    #: The width of a slot of the dashboard's charts, in seconds, and how many are kept.
    chart_bucket_seconds: float = 5.0
    chart_buckets: int = 720
    #: Queue counts (a scan of the namespace's jobs) are reused for this many seconds by the
    #: overview, the queues list and /metrics; queue actions show at once. 0 counts every time.
    counts_ttl: float = 1.0
    #: The product name in the dashboard's title bar.
    title: str = "shoal"
    #: The largest request body taken, in bytes (the server's `server.max_message_bytes`, the
    #: bound gRPC has, so that what fits one surface fits the other); a larger one gets 413.
    max_body_bytes: int = MAX_MESSAGE_BYTES


@dataclass(slots=True)
class HttpState:
    """The per-app state, at `app.state.shoal`."""

    service: QueueService
    settings: HttpSettings
    recorder: Recorder
    counts: QueueCounts
    #: The schedules, when the server runs a scheduler.
    schedules: ScheduleApi | None = None
    #: Authentication; every caller is anonymous with every right when it is off.
    access: AccessService | None = None
    #: Dashboard sign-ins.
    sessions: Sessions | None = None
    #: Open event streams, closed when the server stops so that it can stop at once.
    streams: set[Subscription] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.access is None:
            self.access = AccessService(
                cast(IdentityStore, self.service.store), enabled=False, events=self.service.events
            )
        if self.sessions is None:
            self.sessions = Sessions(self.service.clock, self.settings.session_ttl)

    @property
    def auth(self) -> AccessService:
        """The access service (always set after construction)."""
        assert self.access is not None
        return self.access

    @property
    def web_sessions(self) -> Sessions:
        """The dashboard's sessions (always set after construction)."""
        assert self.sessions is not None
        return self.sessions

    def guard(self) -> GuardedService:
        """The service as the caller of the current request may use it."""
        return GuardedService(self.service, current_caller(), self.auth.authorizer)

    def guard_schedules(self, api: ScheduleApi) -> GuardedSchedules:
        """The schedules as the caller of the current request may use them (changes audited)."""
        return AuditedSchedules(api, current_caller(), self.auth.authorizer, self.audit)

    def require(self, action: Action, namespace: str) -> None:
        """`PermissionDenied` unless the current caller may do `action` in `namespace`."""
        self.auth.require(current_caller(), action, namespace)

    def allows(self, action: Action, namespace: str) -> bool:
        """Whether the current caller may do `action` in `namespace`."""
        return self.auth.authorizer.allows(current_caller(), action, namespace)

    def readable(self) -> Callable[[str], bool]:
        """Whether the current caller may read a namespace (bound to that caller)."""
        principal, authorizer = current_caller(), self.auth.authorizer
        return lambda namespace: authorizer.allows(principal, Action.READ, namespace)

    async def audit(self, action: str, namespace: str, target: str) -> None:
        """Record an admin action of the current caller."""
        await self.auth.record(current_caller(), action, namespace, target)

    async def known_namespaces(self) -> list[str]:
        """Configured namespaces and every namespace seen in an event, sorted; a namespace
        whose last queue was deleted is forgotten (until an event names it again).

        The store has no namespace listing yet, so this is what the server has seen.
        """
        recorder = self.recorder
        for namespace in list(recorder.emptied):
            if await self._in_use(namespace):
                recorder.emptied.discard(namespace)
            else:
                recorder.forget_namespace(namespace)
        return sorted(set(self.settings.namespaces) | self.recorder.namespaces)

    async def _in_use(self, namespace: str) -> bool:
        """Whether a namespace that lost a queue is still in use: configured, holding jobs, or
        with a worker. A queue is listed only while it holds jobs, so a live one may look gone
        for an instant; its worker (a subscribed TCP connection, a stream) says it is not.
        """
        return (
            namespace in self.settings.namespaces
            or bool(await self.counts.get(namespace))
            or bool(await self.service.list_workers(namespace))
        )

    def close_streams(self) -> None:
        """End every open event stream."""
        for stream in list(self.streams):
            stream.close()
        self.streams.clear()

    async def authenticate(self, request: Request) -> WebSession | None:
        """Authenticate the request and keep its principal for the route; its dashboard
        session if it came with the cookie. `Unauthenticated` or `PermissionDenied` (CSRF).
        """
        principal, session = await authenticate(self.auth, self.web_sessions, request)
        set_caller(principal)
        return session


def get_state(request: Request) -> HttpState:
    """The app's state (a FastAPI dependency)."""
    state: HttpState = request.app.state.shoal
    return state
