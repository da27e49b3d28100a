"""The service's background duties: promote due jobs, reap expired leases, apply retention,
forget workers long silent.

Each duty sleeps until it has something to do (the next due job, the next reap tick), and a
job that starts waiting for its run_at (a delayed enqueue, a retry) wakes the promoter early
(`QueueService.on_scheduled`); nothing polls in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from shoal.core.errors import ShoalError
from shoal.core.service import QueueService

__all__ = ["Maintenance"]

logger = logging.getLogger(__name__)

#: Finished jobs deleted per store call; a retention pass makes as many calls as it needs.
RETENTION_BATCH = 10_000


class Maintenance:
    """Runs the duties for one service until `stop()`."""

    def __init__(
        self,
        service: QueueService,
        reap_interval: float = 0.5,
        retention_interval: float = 60.0,
        max_idle: float = 1.0,
        purges: Sequence[Callable[[int], Awaitable[int]]] = (),
    ) -> None:
        self.service = service
        #: More purges run as retention is, every `retention_interval` (the audit log's): each
        #: call deletes at most the count it is given and says how many it deleted.
        self.purges = tuple(purges)
        self.reap_interval = reap_interval
        self.retention_interval = retention_interval
        #: The promoter wakes at least this often, to see delayed jobs enqueued elsewhere.
        self.max_idle = max_idle
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        service.on_scheduled(self._wake.set)

    async def run(self) -> None:
        """Run every duty until `stop()` is called."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._promote_loop())
            group.create_task(self._every(self.reap_interval, self.service.reap_expired))
            group.create_task(self._every(self.retention_interval, self._retention))
            forget = self.service.forget_lost_workers
            group.create_task(self._every(self.retention_interval, forget))
            for purge in self.purges:
                group.create_task(self._every(self.retention_interval, partial(self._purge, purge)))

    def stop(self) -> None:
        """Ask every duty to end."""
        self._stopping.set()
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

    async def _retention(self) -> int:
        """Purge every finished job that is due, one batch at a time.

        One batch a pass capped retention at 10,000 jobs a minute: past that, finished jobs
        piled up for ever. Between batches the loop runs others (a memory store's batch never
        awaits), and a pass ends after `retention_interval` seconds of work, so that a backlog
        cannot keep the store busy with deletions; the next pass goes on with it.
        """
        before = self.service.clock.now() - self.service.settings.retention
        return await self._purge(partial(self.service.store.purge_finished, before))

    async def _purge(self, purge: Callable[[int], Awaitable[int]]) -> int:
        """One pass of a purge, in batches (see `_retention`)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.retention_interval
        total = 0
        while not self._stopping.is_set():
            count = await purge(RETENTION_BATCH)
            total += count
            if count < RETENTION_BATCH or loop.time() >= until:
                break
            await asyncio.sleep(0)
        return total

    async def _every(self, interval: float, duty: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await duty()
            except ShoalError:
                logger.exception("maintenance duty failed", extra={"event": "maintenance.error"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
