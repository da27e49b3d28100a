"""The maintenance duties on the memory store: retention that keeps up, lost workers forgotten."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from shoal.core.clock import ManualClock
from shoal.core.maintenance import Maintenance
from shoal.core.model import JobState, WorkerInfo
from shoal.core.service import ClaimInput, QueueService, ServiceSettings
from shoal.core.validation import EnqueueRequest
from shoal.stores.memory import MemoryStore
from shoal.testing import T0, make_job


class _Batches(MemoryStore):
    """Counts retention's batches, and whether other tasks ran between them."""

    def __init__(self) -> None:
        super().__init__()
        self.turns = 0
        self.seen: list[int] = []

    async def purge_finished(self, before: float, limit: int = 10_000) -> int:
        self.seen.append(self.turns)
        return await super().purge_finished(before, limit)


async def _ticker(store: _Batches) -> None:
    while True:
        store.turns += 1
        await asyncio.sleep(0)


async def test_one_retention_pass_purges_every_due_job_in_batches() -> None:
    # 10,000 a pass, one pass a minute: past ~167 jobs/s the finished ones built up for ever.
    store = _Batches()
    await store.open()
    done = [make_job(state=JobState.SUCCEEDED, finished_at=T0) for _ in range(25_000)]
    await store.enqueue([*done, make_job()], T0)
    service = QueueService(store, replace(ServiceSettings(), retention=0.0))
    maintenance = Maintenance(service, retention_interval=3600.0)
    ticker = asyncio.create_task(_ticker(store))
    runner = asyncio.create_task(maintenance.run())
    try:
        async with asyncio.timeout(5):
            while len(store._jobs) > 1:
                await asyncio.sleep(0.01)
    finally:
        maintenance.stop()
        await asyncio.wait_for(runner, 2)
        ticker.cancel()
    assert [job.state for job in store._jobs.values()] == [JobState.QUEUED]
    assert len(store.seen) == 3  # two full batches, then one that finds fewer: the pass ends
    assert store.seen[0] < store.seen[1] < store.seen[2]  # others ran between batches


async def test_workers_silent_for_long_are_forgotten_unless_they_hold_a_lease() -> None:
    # Pull workers and go-work members that died without leaving, streams of a killed server
    # on a shared store: nothing removed their records, which piled up in every listing.
    clock = ManualClock(T0)
    store = MemoryStore()
    service = QueueService(store, ServiceSettings(forget_workers_after=600.0), clock=clock)
    events = service.events.subscribe(kinds=("worker.left",))
    for worker_id in ("dead", "alive", "holder"):
        await service.register_worker(WorkerInfo(worker_id, "default", ("default",), T0, T0))
    await service.enqueue(EnqueueRequest("t"))
    await service.claim(ClaimInput("holder", ("default",), lease_ttl=3600.0))
    clock.advance(500)
    await service.heartbeat([], "alive")
    clock.advance(200)
    maintenance = Maintenance(service)
    runner = asyncio.create_task(maintenance.run())
    try:
        async with asyncio.timeout(2):
            while len(await store.list_workers()) == 3:
                await asyncio.sleep(0.01)
            left = await anext(aiter(events))
    finally:
        maintenance.stop()
        await asyncio.wait_for(runner, 2)
    assert [w.id for w in await service.list_workers()] == ["alive", "holder"]
    assert left.worker_id == "dead" and left.data == {"reason": "silent for 700s"}


async def test_forgetting_workers_can_be_turned_off() -> None:
    clock = ManualClock(T0)
    service = QueueService(MemoryStore(), ServiceSettings(forget_workers_after=0), clock=clock)
    await service.register_worker(WorkerInfo("dead", "default", ("default",), T0, T0))
    clock.advance(365 * 86400)
    assert await service.forget_lost_workers() == []
    assert [w.id for w in await service.list_workers()] == ["dead"]


async def test_more_purges_run_in_bounded_batches_and_stop_with_the_duties() -> None:
    # The audit log's retention: a purge that always finds a full batch (a long backlog) must
    # neither keep the loop from others nor hold up stop() until the backlog is gone.
    calls: list[int] = []

    async def endless(limit: int) -> int:
        calls.append(limit)
        return limit

    maintenance = Maintenance(QueueService(MemoryStore()), purges=[endless])
    runner = asyncio.create_task(maintenance.run())
    async with asyncio.timeout(5):
        while len(calls) < 3:
            await asyncio.sleep(0)
    maintenance.stop()
    await asyncio.wait_for(runner, 1)
    assert set(calls) == {10_000}
