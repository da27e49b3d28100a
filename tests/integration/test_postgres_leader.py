"""The leader lease moves on within seconds when its holder's process is killed (SIGKILL),
long before the lease's TTL, because the holder's advisory lock dies with its connection.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from shoal.stores.postgres import PostgresStore
from shoal.stores.postgres.testing import temporary_database
from tests.integration._postgres import postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.crash]

#: Far longer than the test: only the holder's death can free the lease in time.
TTL = 300.0

# The child takes the lease, says so, and renews it until killed (or gives up after a minute,
# so that it never outlives a broken test).
CHILD = """
import asyncio, sys, time
from shoal.stores.postgres import PostgresStore

async def main(url):
    store = PostgresStore(url)
    await store.open()
    assert await store.try_acquire_leader("scheduler", "child", {ttl}, time.time())
    print("LEADING", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        await store.try_acquire_leader("scheduler", "child", {ttl}, time.time())
    await store.close()

asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with temporary_database(postgres_url()) as url:
        yield url


async def test_a_killed_leader_is_replaced_within_five_seconds(database: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(ttl=TTL), database],
        stdout=subprocess.PIPE,
        text=True,
    )
    store = PostgresStore(database)
    await store.open()
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        assert line.strip() == "LEADING"
        assert not await store.try_acquire_leader("scheduler", "survivor", TTL, time.time())

        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.to_thread(child.wait, 10)
        # Polling is the point here: the test measures how soon the lease can be taken.
        while not await store.try_acquire_leader("scheduler", "survivor", TTL, time.time()):
            assert time.monotonic() - killed_at < 5.0, "the lease was not taken over in 5 s"
            await asyncio.sleep(0.05)
        took = time.monotonic() - killed_at
        assert took < 5.0
        # The survivor now leads for good: renewing works, and nobody else gets it.
        assert await store.try_acquire_leader("scheduler", "survivor", TTL, time.time())
        assert not await store.try_acquire_leader("scheduler", "third", TTL, time.time())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        await store.close()


async def test_a_live_leader_that_stops_renewing_loses_the_lease_after_its_ttl(
    database: str,
) -> None:
    first, second = PostgresStore(database), PostgresStore(database)
    await first.open()
    await second.open()
    try:
        now = time.time()
        assert await first.try_acquire_leader("reaper", "a", 5.0, now)
        # "a" still holds its advisory lock (its connection is alive): only the TTL frees it.
        assert not await second.try_acquire_leader("reaper", "b", 5.0, now + 4.9)
        assert await second.try_acquire_leader("reaper", "b", 5.0, now + 5.0)
        # "a" learns it lost the lease (and lets its lock go); "b" keeps it.
        assert not await first.try_acquire_leader("reaper", "a", 5.0, now + 5.1)
        assert await second.try_acquire_leader("reaper", "b", 5.0, now + 6.0)
        assert not await first.try_acquire_leader("reaper", "a", 5.0, now + 7.0)
        # Closing the holder's store frees the lease at once, whatever its TTL.
        await second.close()
        assert await first.try_acquire_leader("reaper", "a", 5.0, now + 7.1)
    finally:
        await first.close()
        await second.close()
