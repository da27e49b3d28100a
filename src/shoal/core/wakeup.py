"""Wake-ups for claimers that wait for work, per (namespace, queue): no polling."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["ReadySignal"]


class ReadySignal:
    """Waiters sleep until a job becomes ready in one of their queues, or their timeout passes.

    Waking is a hint, not a promise: a woken claimer claims, and may find that another took the
    job first; it then waits again.
    """

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str], set[asyncio.Future[None]]] = defaultdict(set)
        #: Counts notifications: a claimer that reads it before a claim and finds it changed
        #: after an empty one claims again rather than waiting, so a notice that arrived while
        #: its claim was in flight (no waiter yet) is not lost.
        self.generation = 0

    def notify(self, namespace: str, queue: str) -> None:
        """Jobs became ready in this queue: wake its waiters."""
        self.generation += 1
        waiters = self._waiters.pop((namespace, queue), None)
        if waiters:
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    def notify_all(self) -> None:
        """Wake every waiter (a queue was resumed, the service is closing)."""
        keys = list(self._waiters)
        for namespace, queue in keys:
            self.notify(namespace, queue)

    async def wait(self, namespace: str, queues: Iterable[str], timeout: float) -> bool:
        """Wait for a notification on any of `queues`; False when the timeout passed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = [(namespace, queue) for queue in queues]
        for key in keys:
            self._waiters[key].add(future)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(future)
                    if not waiters:
                        del self._waiters[key]
