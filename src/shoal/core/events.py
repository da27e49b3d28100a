"""Lifecycle events: every change of a job's state, and of workers, queues and namespaces, as
a stream.

The bus fans events out to subscribers, each with its own bounded buffer; a subscriber that
falls behind loses its oldest events (and is told how many) rather than slowing the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field

from shoal.core.model import Job

__all__ = ["RELAYED", "Event", "EventBus", "Subscription", "job_event"]

logger = logging.getLogger(__name__)


#: The `data` key of an event another replica published (`QueueService.publish_everywhere`).
RELAYED = "relayed"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. `kind` is dotted: `job.enqueued`, `job.claimed`,
    `job.succeeded`, `job.failed`, `job.retrying`, `job.cancel_requested`, `job.cancelled`,
    `job.requeued`, `job.deleted`, `worker.joined`, `worker.left`, `queue.paused`,
    `namespace.deleted`, ...
    """

    kind: str
    namespace: str
    at: float
    job_id: str | None = None
    queue: str | None = None
    task: str | None = None
    state: str | None = None
    worker_id: str | None = None
    attempt: int | None = None
    data: dict[str, str] = field(default_factory=dict)


def job_event(kind: str, job: Job, at: float, **data: str) -> Event:
    """The event for a job's change."""
    return Event(
        kind=kind,
        namespace=job.namespace,
        at=at,
        job_id=job.id,
        queue=job.queue,
        task=job.task,
        state=job.state.value,
        worker_id=job.worker_id,
        attempt=job.attempt,
        data=data,
    )


class Subscription:
    """A subscriber's buffer; iterate it with `async for`, close it when done."""

    def __init__(
        self,
        bus: EventBus,
        accept: Callable[[Event], bool],
        capacity: int,
        kinds: frozenset[str] | None = None,
    ) -> None:
        self._bus = bus
        self._accept = accept
        #: The kinds this subscriber takes (None: all).
        self.kinds = kinds
        self._buffer: deque[Event] = deque(maxlen=capacity)
        self._ready = asyncio.Event()
        self._closed = False
        #: Events dropped because this subscriber fell behind.
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if (self.kinds is not None and event.kind not in self.kinds) or not self._accept(event):
            return
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(event)
        self._ready.set()

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when the timeout passes or the subscription is closed."""
        while not self._buffer:
            if self._closed:
                return None
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        return self._buffer.popleft()

    def close(self) -> None:
        """Stop receiving events and end the iteration."""
        self._closed = True
        self._ready.set()
        self._bus._remove(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while (event := await self.next()) is not None:
            yield event


class EventBus:
    """Publish events to every current subscriber whose filter accepts them.

    A subscriber may name the kinds it wants: events of other kinds never reach its filter, and
    a publisher asks `wants(kind)` before it builds an event, so the hot path (a claim, a
    completion) builds none while nobody listens to those kinds.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        #: Subscribers taking every kind, and the kinds some subscriber names.
        self._everything = 0
        self._named: dict[str, int] = {}

    def publish(self, event: Event) -> None:
        """Hand the event to the subscribers; never blocks."""
        for subscriber in self._subscribers:
            subscriber._offer(event)

    def subscribe(
        self,
        accept: Callable[[Event], bool] = lambda _: True,
        capacity: int = 10_000,
        kinds: Collection[str] | None = None,
    ) -> Subscription:
        """A new subscription to the events that `accept` returns True for (of `kinds` only,
        when given).
        """
        wanted = frozenset(kinds) if kinds is not None else None
        subscription = Subscription(self, accept, capacity, wanted)
        self._subscribers.append(subscription)
        if wanted is None:
            self._everything += 1
        else:
            for kind in wanted:
                self._named[kind] = self._named.get(kind, 0) + 1
        return subscription

    def close(self) -> None:
        """End every subscription."""
        for subscriber in list(self._subscribers):
            subscriber.close()

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)
            wanted = subscription.kinds
            if wanted is None:
                self._everything -= 1
            else:
                for kind in wanted:
                    self._named[kind] -= 1
                    if not self._named[kind]:
                        del self._named[kind]

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens (so building an event can be skipped)."""
        return bool(self._subscribers)

    def wants(self, kind: str) -> bool:
        """Whether any subscriber would be handed an event of this kind."""
        return self._everything > 0 or kind in self._named
