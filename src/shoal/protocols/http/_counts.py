from __future__ import annotations

import asyncio
import time

from shoal.core.events import Event
from shoal.core.model import QueueInfo
from shoal.core.service import QueueService


class QueueCounts:
    """The queues of each namespace with their counts, at most `ttl` seconds old.

    Counting a namespace scans an index as long as its job count (the SQLite store at a
    million jobs takes a few hundred milliseconds), and the overview, the queues page and
    /metrics all need it, each open tab every second while jobs move. So one scan serves
    every caller for `ttl` seconds, callers that arrive while it runs share it, and a queue
    event (pause, resume, purge, delete) drops the namespace's entry so that an action shows
    at once. `ttl = 0` counts on every call.
    """

    def __init__(self, service: QueueService, ttl: float) -> None:
        self._service = service
        self._ttl = ttl
        self._entries: dict[str, tuple[float, list[QueueInfo]]] = {}
        self._running: dict[str, asyncio.Task[list[QueueInfo]]] = {}

    async def get(self, namespace: str) -> list[QueueInfo]:
        entry = self._entries.get(namespace)
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        task = self._running.get(namespace)
        if task is None:
            task = asyncio.ensure_future(self._count(namespace))
            self._running[namespace] = task
        # Shielded: a caller that goes away must not cancel the scan the others wait for.
        return await asyncio.shield(task)

    async def _count(self, namespace: str) -> list[QueueInfo]:
        started = time.monotonic()
        try:
            queues = await self._service.list_queues(namespace)
        finally:
            self._running.pop(namespace, None)
        if self._ttl > 0 and self._entries.get(namespace, (0.0,))[0] <= started:
            if queues:
                self._entries[namespace] = (started, queues)
            else:  # not kept: any caller may name a namespace, and an empty one is cheap
                self._entries.pop(namespace, None)
        return queues

    def observe(self, event: Event) -> bool:
        """Forget a namespace's counts when one of its queues changes; never buffers."""
        if event.kind.startswith("queue."):
            self._entries.pop(event.namespace, None)
        return False
