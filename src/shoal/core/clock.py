"""Time as a port, so that leases, backoff and schedules can be tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock time in POSIX seconds, and a way to wait for it."""

    def now(self) -> float:
        """The current time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """The current time."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of real time."""
        await asyncio.sleep(max(seconds, 0.0))


class ManualClock:
    """A clock that moves only when a test calls `advance`; sleepers wake when their time comes."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        """The current (manual) time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until `advance` has moved the clock past now + seconds."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake the sleepers whose deadline has passed."""
        self._now += seconds
        due = [item for item in self._sleepers if item[0] <= self._now]
        self._sleepers = [item for item in self._sleepers if item[0] > self._now]
        for _, future in due:
            if not future.done():
                future.set_result(None)
