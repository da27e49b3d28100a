"""What the HTTP app holds: the service, its settings, and the event recorder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from shoal.core.errors import Unauthenticated
from shoal.core.events import Subscription
from shoal.core.model import DEFAULT_NAMESPACE
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService

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
    #: When set, every /api/v1 route and /metrics need `Authorization: Bearer <token>`
    #: (or the dashboard's cookie holding it).
    api_token: str | None = None
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


@dataclass(slots=True)
class HttpState:
    """The per-app state, at `app.state.shoal`."""

    service: QueueService
    settings: HttpSettings
    recorder: Recorder
    counts: QueueCounts
    #: The schedules, when the server runs a scheduler.
    schedules: ScheduleApi | None = None
    #: Open event streams, closed when the server stops so that it can stop at once.
    streams: set[Subscription] = field(default_factory=set)

    def known_namespaces(self) -> list[str]:
        """Configured namespaces and every namespace seen in an event, sorted.

        The store has no namespace listing yet, so this is what the server has seen.
        """
        return sorted(set(self.settings.namespaces) | self.recorder.namespaces)

    def close_streams(self) -> None:
        """End every open event stream."""
        for stream in list(self.streams):
            stream.close()
        self.streams.clear()

    def check_token(self, request: Request) -> None:
        """`Unauthenticated` unless the request carries the API token (when one is set)."""
        token = self.settings.api_token
        if token is None:
            return
        header = request.headers.get("authorization", "")
        if header == f"Bearer {token}" or request.cookies.get("shoal_token") == token:
            return
        raise Unauthenticated("send Authorization: Bearer <token>")


def get_state(request: Request) -> HttpState:
    """The app's state (a FastAPI dependency)."""
    state: HttpState = request.app.state.shoal
    return state
