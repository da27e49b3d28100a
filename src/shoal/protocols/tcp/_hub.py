"""What the sessions of one TCP surface share: settings, the session table, the queues that
clients declared, recurrent-job entry numbers, the retention of done jobs, lease renewal.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shoal.core.access import AccessService
from shoal.core.errors import ShoalError
from shoal.core.events import Event
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService
from shoal.protocols.tcp.codec import DEFAULT_MAX_LINE, IDLE_FLUSH_SECONDS

if TYPE_CHECKING:
    from shoal.protocols.tcp.dispatch import WorkerLink
    from shoal.protocols.tcp.session import Session

logger = logging.getLogger("shoal.protocols.tcp")

#: The most done jobs waiting for their `job_timeout` (about 200 bytes each).
_MAX_RETIRING = 1_000_000
#: `delay_policy` value that makes retries immediate (Jobatator's test setting).
IGNORE = "IGNORE"


@dataclass(frozen=True, slots=True)
class TcpSettings:
    """How the TCP surface behaves (Jobatator's `config.yml` keys where they exist)."""

    #: The longest command line, in bytes; a longer one gets `Err: line-too-long` and a close.
    max_line: int = DEFAULT_MAX_LINE
    #: A partial line ending with a space, idle this long, is taken as a command (the CLI).
    idle_flush: float = IDLE_FLUSH_SECONDS
    #: A connection that has not passed `AUTH` is closed after this long without input.
    auth_timeout: float = 30.0
    #: Enables DEBUG, DEBUG_JSON, DEBUG_PARTS and STOP_SERVER.
    test_mode: bool = False
    #: Enables DISPATCH.
    allow_dispatch: bool = False
    #: `IGNORE`: a job marked `errored` is retried at once instead of after its backoff, and
    #: RECURRENT_JOB also publishes one job when it creates a schedule.
    delay_policy: str = ""
    #: Seconds a job marked `done` is kept before it is deleted (0: at once).
    job_timeout: float = 3600.0
    #: The most jobs LIST_JOBS (and each queue of LIST_QUEUES) shows, newest kept.
    max_listed_jobs: int = 1000
    #: Renew the leases of connected workers (Jobatator clients never heartbeat: the open
    #: connection is their liveness). False: a worker must send HEARTBEAT within the lease.
    renew_leases: bool = True
    #: The most connections served at once; more are refused with `Err: resource-exhausted`.
    max_connections: int = 10_000

    @property
    def ignore_delays(self) -> bool:
        """Whether `delay_policy` is `IGNORE` (exact, upper case, as upstream)."""
        return self.delay_policy == IGNORE


class Hub:
    """The state shared by every session of one TCP listener (and its HTTP gateway)."""

    def __init__(
        self,
        service: QueueService,
        access: AccessService,
        schedules: ScheduleApi,
        settings: TcpSettings | None = None,
    ) -> None:
        self.service = service
        self.access = access
        self.schedules = schedules
        self.settings = settings or TcpSettings()
        self.started = time.monotonic()
        #: Where the listener is bound (DEBUG_JSON shows it).
        self.host = ""
        self.port = 0
        #: Set by STOP_SERVER (test mode) once its reply is written: the owner should stop.
        self.stop_requested = asyncio.Event()
        self.sessions: dict[int, Session] = {}
        #: The connections working as workers, by worker id: (link, namespace of that id).
        self.links: dict[str, tuple[WorkerLink, str]] = {}
        self._ids = itertools.count(1)
        # Queues exist upstream once published to or subscribed; shoal's exist while they
        # hold jobs, so the declared ones are remembered here (namespace, queue).
        self.declared: set[tuple[str, str]] = set()
        self.purged: set[tuple[str, str]] = set()
        self._entry_ids: dict[tuple[str, str], int] = {}
        self._entries: dict[int, tuple[str, str]] = {}
        self._entry_seq = itertools.count(1)
        self._retiring: deque[tuple[float, str, str]] = deque()
        self._retirer: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._router: asyncio.Task[None] | None = None

    # --- sessions ---------------------------------------------------------------------------

    def next_session_id(self) -> int:
        """A number for a new session."""
        return next(self._ids)

    def workers_of(self, namespace: str, queue: str) -> Iterator[Session]:
        """The sessions subscribed to this queue."""
        for session in self.sessions.values():
            if session.worker.subscribed(namespace, queue):
                yield session

    # --- queues -----------------------------------------------------------------------------

    def declare(self, namespace: str, queue: str) -> None:
        """A client published to or subscribed to the queue: it exists from now on."""
        self.declared.add((namespace, queue))
        self.purged.discard((namespace, queue))

    def forget(self, namespace: str, queue: str) -> None:
        """The queue was deleted."""
        self.declared.discard((namespace, queue))
        self.purged.discard((namespace, queue))

    def declared_in(self, namespace: str) -> set[str]:
        """Queues declared or subscribed in a namespace."""
        names = {queue for ns, queue in self.declared if ns == namespace}
        for session in self.sessions.values():
            names |= session.worker.queues_in(namespace)
        return names

    @staticmethod
    def queue_id(namespace: str, queue: str) -> str:
        """A stable 16-character queue ID (Jobatator's queues have one; shoal's do not)."""
        return hashlib.sha256(f"{namespace}\0{queue}".encode()).hexdigest()[:16]

    # --- recurrent jobs ---------------------------------------------------------------------

    def entry_id(self, namespace: str, schedule_id: str) -> int:
        """The number Jobatator clients know a schedule by (1, 2, ... for this process)."""
        key = (namespace, schedule_id)
        number = self._entry_ids.get(key)
        if number is None:
            number = self._entry_ids[key] = next(self._entry_seq)
            self._entries[number] = key
        return number

    def entry(self, number: int) -> tuple[str, str] | None:
        """The (namespace, schedule id) of an entry number."""
        return self._entries.get(number)

    def forget_entry(self, number: int) -> None:
        """An entry's schedule is deleted: declared again, it gets a new number (as a cron
        entry re-added to Jobatator's scheduler does).
        """
        key = self._entries.pop(number, None)
        if key is not None:
            self._entry_ids.pop(key, None)

    # --- retention of done jobs -------------------------------------------------------------

    async def retire(self, namespace: str, job_id: str) -> None:
        """Delete a job marked `done` after `job_timeout` seconds (at once for 0).

        The delay is the same for every job, so one queue in deadline order and one task
        do it (no timer per job). Past `_MAX_RETIRING` waiting, a job is left to the
        service's own retention.
        """
        delay = self.settings.job_timeout
        if delay <= 0:
            await self._delete(namespace, job_id)
            return
        if len(self._retiring) >= _MAX_RETIRING:
            return
        self._retiring.append((time.monotonic() + delay, namespace, job_id))
        if self._retirer is None:
            self._retirer = asyncio.create_task(self._retire_loop(), name="shoal-tcp-retire")

    async def _retire_loop(self) -> None:
        while self._retiring:
            due, namespace, job_id = self._retiring[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._retiring.popleft()
            await self._delete(namespace, job_id)
        self._retirer = None

    async def _delete(self, namespace: str, job_id: str) -> None:
        try:
            await self.service.delete(namespace, job_id)
        except ShoalError:
            pass  # deleted already (DELETE_JOB, DELETE_QUEUE, retention)
        except Exception:  # never end the retirements of every later job
            logger.exception(
                "deleting a done job failed", extra={"event": "tcp.retire_failed", "job_id": job_id}
            )

    # --- lease renewal ----------------------------------------------------------------------

    def start(self) -> None:
        """Start routing kicks and drains to the connections they are about, and renewing
        the leases of connected workers (`TcpSettings.renew_leases`).
        """
        if self._router is None:
            self._router = asyncio.create_task(self._route_events(), name="shoal-tcp-events")
        if self.settings.renew_leases and self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_loop(), name="shoal-tcp-renew")

    async def _route_events(self) -> None:
        # One subscription for every connection, routed by worker id, as the gRPC streams do.
        links = self.links
        subscription = self.service.events.subscribe(
            lambda event: event.worker_id in links, kinds=("worker.kick", "worker.drain")
        )
        async for event in subscription:
            self._on_worker_event(event)

    def _on_worker_event(self, event: Event) -> None:
        found = self.links.get(event.worker_id or "")
        if found is None or found[1] != event.namespace:
            return
        link, namespace = found
        if event.kind == "worker.kick":
            link.kicked(namespace)
        else:
            link.drained(namespace)

    async def _renew_loop(self) -> None:
        interval = max(self.service.settings.lease_ttl / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            for session in list(self.sessions.values()):
                try:
                    await session.worker.renew()
                except Exception:  # one session's trouble must not end the renewals of all
                    logger.exception(
                        "renewing a TCP worker's leases failed",
                        extra={"event": "tcp.renew_failed", "worker_id": session.worker_id},
                    )

    async def close(self) -> None:
        """Stop the background work (the sessions are closed by their owner)."""
        for task in (self._renewer, self._retirer, self._router):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._renewer = self._retirer = self._router = None
