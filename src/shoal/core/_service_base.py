"""What every part of `QueueService` shares: its settings, its state, and how it tells of
changes (events, broadcasts to the other replicas, wake-ups of claimers and of the promoter).

`QueueService` (`shoal.core.service`) is this base with its operations on top: the worker
records' in `shoal.core._membership`, the jobs' and queues' in `shoal.core.service`. Import
these names from `shoal.core.service`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from shoal.core.clock import Clock, SystemClock
from shoal.core.events import RELAYED, Event, EventBus, job_event
from shoal.core.model import WAITING_STATES, Job, JobState
from shoal.core.ports import Store
from shoal.core.retry import RetryPolicy
from shoal.core.validation import Limits
from shoal.core.wakeup import ReadySignal

__all__ = ["MAX_LOOKAHEAD", "QueuePolicy", "ServiceBase", "ServiceSettings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Defaults for the jobs of a queue, used where a job does not say."""

    max_attempts: int = 3
    backoff: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """How the service behaves; loaded from configuration by the composition root."""

    lease_ttl: float = 15.0
    heartbeat_interval: float = 2.0
    #: Finished jobs are deleted this many seconds after they finish.
    retention: float = 7 * 24 * 3600.0
    limits: Limits = field(default_factory=Limits)
    default_policy: QueuePolicy = field(default_factory=QueuePolicy)
    #: Per-queue policies by queue name (any namespace).
    queue_policies: Mapping[str, QueuePolicy] = field(default_factory=dict)
    #: A worker that asks for it may lease a scheduled job this many seconds before its
    #: `run_at` and hold it until then, so it starts on time rather than one network hop
    #: late. It caps what a claim asks for; the scheduler fires this early too.
    lookahead: float = 0.1
    #: The record of a worker silent this many seconds and holding no lease is deleted (it
    #: shows as lost from `lease_ttl` on); 0 keeps every record until the worker leaves.
    forget_workers_after: float = 3600.0

    def policy(self, queue: str) -> QueuePolicy:
        """The policy of `queue`."""
        return self.queue_policies.get(queue, self.default_policy)


#: The most a service's lookahead may be (configuration refuses more); the SDK's workers ask
#: for this much and get the service's own.
MAX_LOOKAHEAD = 1.0


class ServiceBase:
    """The state of a `QueueService` and the notices its operations send."""

    def __init__(
        self,
        store: Store,
        settings: ServiceSettings | None = None,
        clock: Clock | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or ServiceSettings()
        self.clock: Clock = clock or SystemClock()
        self.events = events or EventBus()
        self.ready = ReadySignal()
        store.set_ready_listener(self.ready)
        store.set_broadcast_listener(self._relayed)
        self._scheduled_listeners: list[Callable[[], None]] = []
        self._broadcasts: set[asyncio.Task[None]] = set()

    def publish_everywhere(self, event: Event) -> None:
        """Publish `event` here and to the other processes that share the store (replicas):
        a kick or drain reaches a worker connected to any of them, a schedule's change the
        scheduler that leads. Sent in the background: the change it tells of is committed.
        """
        self.events.publish(event)
        if self.store.supports_notify:
            task = asyncio.ensure_future(self._broadcast(event))
            self._broadcasts.add(task)
            task.add_done_callback(self._broadcasts.discard)

    async def finish_broadcasts(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout` seconds) for the broadcasts still being sent: a server that
        stops sends the kicks and drains it was asked for before it closes its store.
        """
        if self._broadcasts:
            await asyncio.wait(set(self._broadcasts), timeout=timeout)

    def _relayed(self, event: Event) -> None:
        """An event another replica published: here too, marked as relayed (`RELAYED`), so
        that what counts events counts it once, on the replica it happened on.
        """
        self.events.publish(replace(event, data={**event.data, RELAYED: "true"}))

    async def _broadcast(self, event: Event) -> None:
        try:
            await self.store.broadcast(event)
        except Exception:  # the others see the change later (leases, resyncs), not at once
            logger.warning(
                "could not tell the other replicas of %s",
                event.kind,
                exc_info=True,
                extra={"event": "store.broadcast_failed", "kind": event.kind},
            )

    def on_scheduled(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a job starts waiting for its `run_at` (a delayed enqueue, a
        retry with backoff): the promoter wakes to recompute its sleep. A direct call, so that
        no event is built for every enqueue when nobody else listens to events.
        """
        self._scheduled_listeners.append(listener)

    def _scheduled(self) -> None:
        # Called after a commit: a listener that fails must not fail the operation.
        for listener in self._scheduled_listeners:
            try:
                listener()
            except Exception:
                logger.exception(
                    "an on_scheduled listener failed", extra={"event": "service.error"}
                )

    def _wake_claimers(self, jobs: Iterable[Job], now: float) -> None:
        """Wake the claimers of the new jobs' queues: every one for a due job, only those
        that asked for a lookahead for a job due within it.
        """
        due: set[tuple[str, str]] = set()
        soon: set[tuple[str, str]] = set()
        horizon = now + self.settings.lookahead
        for job in jobs:
            if job.state is JobState.QUEUED:
                due.add((job.namespace, job.queue))
            elif job.run_at <= horizon:
                soon.add((job.namespace, job.queue))
        for namespace, queue in due:
            self.ready.notify(namespace, queue)
        for namespace, queue in soon - due:
            self.ready.notify_soon(namespace, queue)

    def _requeued(self, jobs: Sequence[Job], now: float) -> None:
        waiting = [job for job in jobs if job.state in WAITING_STATES]
        self._wake_claimers(waiting, now)
        if any(job.state is JobState.SCHEDULED for job in waiting):
            self._scheduled()  # taken ahead of its run_at, it waits for it again
        for job in jobs:
            kind = "job.requeued" if job.state in WAITING_STATES else f"job.{job.state.value}"
            self._publish(kind, job, now)

    def _publish(self, kind: str, job: Job, now: float) -> None:
        if self.events.wants(kind):
            self.events.publish(job_event(kind, job, now))

    def _publish_queue(self, kind: str, namespace: str, queue: str) -> None:
        self.events.publish(Event(kind, namespace, self.clock.now(), queue=queue))
