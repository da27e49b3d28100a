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
        self._waiters: dict[tuple[str, str], set[asyncio.Future[bool]]] = defaultdict(set)
        #: The waiters that also take jobs due soon (a claim with a lookahead).
        self._ahead: dict[tuple[str, str], set[asyncio.Future[bool]]] = defaultdict(set)
        #: Counts notifications: a claimer that reads it before a claim and finds it changed
        #: after an empty one claims again rather than waiting, so a notice that arrived while
        #: its claim was in flight (no waiter yet) is not lost.
        self.generation = 0

    @property
    def waiting(self) -> bool:
        """Whether any claimer waits."""
        return bool(self._waiters)

    def notify(self, namespace: str, queue: str) -> None:
        """Jobs became ready in this queue: wake its waiters."""
        self.generation += 1
        _wake(self._waiters.pop((namespace, queue), None))
        self._ahead.pop((namespace, queue), None)

    def notify_soon(self, namespace: str, queue: str) -> None:
        """A job of this queue falls due within the lookahead: wake the waiters that take
        such jobs, and only them (the others would claim nothing).
        """
        self.generation += 1
        _wake(self._ahead.pop((namespace, queue), None))

    def notify_all(self) -> None:
        """Wake every waiter (a queue was resumed, the service is closing, notices may have
        been missed); a claim under way sees the generation move and looks again.
        """
        self.generation += 1
        keys = list(self._waiters)
        for namespace, queue in keys:
            self.notify(namespace, queue)

    async def wait(
        self,
        namespace: str,
        queues: Iterable[str],
        timeout: float,
        ahead: bool = False,
        since: int | None = None,
    ) -> bool:
        """Wait for a notification on any of `queues` (`notify_soon`'s too when `ahead`);
        False when the timeout passed.

        `since`: the `generation` the caller read before its claim. A wait that starts after
        it changed returns True at once: a caller that waits in a task of its own registers a
        loop turn after it decided to wait, and a notice in that turn found no waiter.
        """
        if since is not None and since != self.generation:
            return True
        # A timer on the future rather than asyncio.wait_for: the waiter resumes in the loop
        # iteration after the notice (wait_for adds a hop through its own waiter future).
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        keys = [(namespace, queue) for queue in queues]
        registries = (self._waiters, self._ahead) if ahead else (self._waiters,)
        for registry in registries:
            for key in keys:
                registry[key].add(future)
        timer = loop.call_later(max(timeout, 0.0), _expire, future)
        try:
            return await future
        finally:
            timer.cancel()
            for registry in registries:
                for key in keys:
                    waiters = registry.get(key)
                    if waiters is not None:
                        waiters.discard(future)
                        if not waiters:
                            del registry[key]


def _wake(waiters: set[asyncio.Future[bool]] | None) -> None:
    for future in waiters or ():
        if not future.done():
            future.set_result(True)


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)
