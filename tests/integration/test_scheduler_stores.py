"""The scheduler on the durable stores, in real time: restarts and replicas make one job a slot.

Exactly-once per slot comes from the idempotency key `schedule:<id>:<slot>`, not from the
leader lease; these tests lose the schedule's state write on purpose and run two replicas.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from shoal.core.model import JobQuery
from shoal.core.ports import Store
from shoal.core.service import QueueService
from shoal.scheduler import RunnerSettings, ScheduleInput, SchedulerRunner, ScheduleService

from ._postgres import postgres_url

EVERY_MS = 50
SETTINGS = RunnerSettings(lease_ttl=1.0, renew_interval=0.1)


@asynccontextmanager
async def sqlite_stores(tmp_path: Path) -> AsyncIterator[object]:
    from shoal.stores.sqlite import SqliteStore

    path = tmp_path / "shoal.db"

    @asynccontextmanager
    async def open_store() -> AsyncIterator[Store]:
        store = SqliteStore(path)
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    yield open_store


@asynccontextmanager
async def postgres_stores(tmp_path: Path) -> AsyncIterator[object]:
    from shoal.stores.postgres import PostgresStore
    from shoal.stores.postgres.testing import temporary_database

    async with temporary_database(postgres_url()) as database:

        @asynccontextmanager
        async def open_store() -> AsyncIterator[Store]:
            store = PostgresStore(database)
            await store.open()
            try:
                yield store
            finally:
                await store.close()

        yield open_store


BACKENDS = [
    pytest.param(sqlite_stores, id="sqlite"),
    pytest.param(postgres_stores, id="postgres", marks=pytest.mark.postgres),
]


async def slots_of(store: Store, schedule_id: str) -> list[int]:
    page = await store.list_jobs(JobQuery(limit=1000))
    prefix = f"schedule:{schedule_id}:"
    keys = [job.idempotency_key or "" for job in page.jobs]
    return sorted(int(key[len(prefix) :]) for key in keys if key.startswith(prefix))


def assert_every_slot_once(slots: list[int]) -> None:
    assert not [slot for slot, n in Counter(slots).items() if n > 1], "a slot fired twice"
    assert slots == list(range(slots[0], slots[-1] + 1, EVERY_MS)), "a slot was missed"


@asynccontextmanager
async def running(queue: QueueService, holder: str) -> AsyncIterator[SchedulerRunner]:
    runner = SchedulerRunner(queue, holder, SETTINGS)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_restart_that_lost_the_state_write_fires_no_slot_twice(
    backend: object, tmp_path: Path
) -> None:
    async with backend(tmp_path) as open_store:  # type: ignore[operator]
        async with open_store() as store:
            queue = QueueService(store)
            schedules = ScheduleService(queue)
            await schedules.add(ScheduleInput(task="t", id="s", every_ms=EVERY_MS, catch_up="all"))
            async with running(queue, "first"):
                await asyncio.sleep(0.2)
                stale = await store.get_schedule("default", "s")
                await asyncio.sleep(0.3)
            before = await slots_of(store, "s")
            assert stale is not None and len(before) >= 6
            # As if the writes after `stale` never reached the disk.
            await store.save_schedule(replace(stale))
        async with open_store() as store:
            queue = QueueService(store)
            async with running(queue, "second"):
                await asyncio.sleep(0.4)
            slots = await slots_of(store, "s")
    assert_every_slot_once(slots)
    assert set(before) < set(slots)


@pytest.mark.postgres
async def test_two_replicas_fire_each_slot_once_across_a_leader_change(tmp_path: Path) -> None:
    async with postgres_stores(tmp_path) as open_store:
        async with open_store() as one, open_store() as two:  # type: ignore[operator]
            queue_one, queue_two = QueueService(one), QueueService(two)
            await ScheduleService(queue_one).add(
                ScheduleInput(task="t", id="s", every_ms=EVERY_MS, catch_up="all")
            )
            first = SchedulerRunner(queue_one, "one", SETTINGS)
            first_task = asyncio.create_task(first.run())
            await asyncio.sleep(0.1)
            async with running(queue_two, "two") as second:
                await asyncio.sleep(0.6)
                leaders = (first.is_leader, second.is_leader)
                first.stop()  # the leader leaves; the follower takes over within a renewal
                await asyncio.wait_for(first_task, 5)
                await asyncio.sleep(0.8)
                assert second.is_leader
            slots = await slots_of(one, "s")
    assert leaders == (True, False)
    assert_every_slot_once(slots)
    assert len(slots) >= 20


@pytest.mark.postgres
@pytest.mark.parametrize("action", ["pause", "remove"])
async def test_a_replicas_pause_or_removal_during_the_runners_write_stays(
    action: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with postgres_stores(tmp_path) as open_store:
        async with open_store() as one, open_store() as two:  # type: ignore[operator]
            other = ScheduleService(QueueService(two))
            await other.add(ScheduleInput(task="t", id="s", every_ms=EVERY_MS))
            acted = asyncio.Event()

            def before_write(method: Callable[..., Awaitable[object]]) -> Callable[..., object]:
                async def write(*args: object) -> object:
                    if not acted.is_set():  # replica two commits between one's read and write
                        acted.set()
                        await getattr(other, action)("default", "s")
                    return await method(*args)

                return write

            async with running(QueueService(one), "one"):
                await asyncio.sleep(0.2)
                for name in ("save_schedule", "replace_schedule"):
                    monkeypatch.setattr(one, name, before_write(getattr(one, name)))
                await asyncio.wait_for(acted.wait(), 5)
                await asyncio.sleep(0.1)
                fired = len(await slots_of(two, "s"))
                await asyncio.sleep(0.4)
                fired_later = len(await slots_of(two, "s")) - fired
            record = await two.get_schedule("default", "s")
    assert (record is None) if action == "remove" else (record is not None and record.paused)
    assert fired_later == 0
