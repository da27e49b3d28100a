"""The SQLite store opens and closes on threads of its own: the loop's default executor may be
full of calls nobody waits for any more (sync tasks a worker gave up on at shutdown).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shoal.stores.sqlite import SqliteStore
from shoal.testing import make_job
from shoal.testing.store_contract import T0


@pytest.mark.parametrize("inline_writes", [False, True])
async def test_open_and_close_do_not_wait_for_the_default_executor(
    tmp_path: Path, inline_writes: bool
) -> None:
    release = threading.Event()
    executor = ThreadPoolExecutor(1)
    executor.submit(release.wait, 30)
    asyncio.get_running_loop().set_default_executor(executor)
    path = tmp_path / "x.db"
    try:
        store = SqliteStore(path, inline_writes=inline_writes)
        async with asyncio.timeout(5):
            await store.open()
            jobs = [make_job() for _ in range(20)]
            writes = [asyncio.create_task(store.enqueue([job], T0)) for job in jobs]
            await asyncio.sleep(0)  # queued, not acknowledged yet
            await store.close()
        assert all(write.done() for write in writes)  # close still writes what is queued
    finally:
        release.set()
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert (await reopened.stats("default")).total == 20
    finally:
        await reopened.close()
