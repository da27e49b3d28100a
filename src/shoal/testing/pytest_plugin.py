"""A pytest plugin (registered through the `pytest11` entry point) with shoal's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoal.core.clock import ManualClock
from shoal.core.service import QueueService
from shoal.stores.memory import MemoryStore


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that moves only when the test advances it."""
    return ManualClock()


@pytest.fixture
def memory_service(manual_clock: ManualClock) -> Iterator[QueueService]:
    """A `QueueService` over a fresh memory store, on the manual clock."""
    yield QueueService(MemoryStore(), clock=manual_clock)
