"""The service's background duties: promote due jobs, reap expired leases, apply retention.

Each duty sleeps until it has something to do (the next due job, the next reap tick), and an
enqueue of a delayed job wakes the promoter early; nothing polls in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shoal.core.errors import ShoalError
from shoal.core.model import JobState
from shoal.core.service import QueueService

__all__ = ["Maintenance"]

logger = logging.getLogger(__name__)

#: The events of a job that becomes scheduled (a delayed enqueue, a retry with backoff).
_TO_SCHEDULED = ("job.enqueued", "job.retrying")


class Maintenance:
    """Runs the duties for one service until `stop()`."""

    def __init__(
        self,
        service: QueueService,
        reap_interval: float = 0.5,
        retention_interval: float = 60.0,
        max_idle: float = 1.0,
    ) -> None:
        self.service = service
        self.reap_interval = reap_interval
        self.retention_interval = retention_interval
        #: The promoter wakes at least this often, to see delayed jobs enqueued elsewhere.
        self.max_idle = max_idle
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._watch = service.events.subscribe(self._is_delayed_enqueue, 1, _TO_SCHEDULED)

    @staticmethod
    def _is_delayed_enqueue(event: object) -> bool:
        state = getattr(event, "state", None)
        return state == JobState.SCHEDULED.value

    async def run(self) -> None:
        """Run every duty until `stop()` is called."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._promote_loop())
            group.create_task(self._every(self.reap_interval, self.service.reap_expired))
            group.create_task(self._every(self.retention_interval, self._retention))
            group.create_task(self._forward_wakeups())

    def stop(self) -> None:
        """Ask every duty to end."""
        self._stopping.set()
        self._wake.set()
        self._watch.close()

    async def _forward_wakeups(self) -> None:
        while not self._stopping.is_set():
            if await self._watch.next() is not None:
                self._wake.set()

    async def _promote_loop(self) -> None:
        clock = self.service.clock
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                due = await self.service.store.promote_due(clock.now())
            except ShoalError:
                logger.exception("promoting due jobs failed", extra={"event": "maintenance.error"})
                due = None
            if due is not None:
                for namespace, queue in due.promoted:
                    self.service.ready.notify(namespace, queue)
            pause = self.max_idle
            if due is not None and due.next_due_at is not None:
                pause = min(pause, max(due.next_due_at - clock.now(), 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _retention(self) -> object:
        before = self.service.clock.now() - self.service.settings.retention
        return await self.service.store.purge_finished(before)

    async def _every(self, interval: float, duty: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await duty()
            except ShoalError:
                logger.exception("maintenance duty failed", extra={"event": "maintenance.error"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
