"""The hot path's signals.

A claimer waiting for work is woken as soon as an enqueue is submitted to a store that runs
operations in order, so that its claim follows the enqueue (in SQLite, often in its very
transaction) instead of starting after the enqueue's commit. Events are built only for kinds
someone subscribed to.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shoal.core.events import Event, EventBus
from shoal.core.model import Job, LeaseRef
from shoal.core.ports import ClaimRequest, Store
from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.core.wakeup import ReadySignal
from shoal.stores.memory import MemoryStore
from shoal.stores.sqlite import SqliteStore


async def waiting_claim(service: QueueService) -> asyncio.Task[list[Job]]:
    claim = ClaimInput(worker_id="w-1", queues=("q",), wait=5.0)
    task = asyncio.create_task(service.claim(claim))
    while not service.ready.waiting:
        await asyncio.sleep(0)
    return task


async def test_a_waiting_claim_has_the_job_when_the_enqueue_returns() -> None:
    service = QueueService(MemoryStore())
    await service.store.open()
    claimer = await waiting_claim(service)
    enqueued = await service.enqueue(EnqueueRequest(task="t", queue="q"))
    # The memory store runs each call without awaiting: the claim ran right after the enqueue,
    # before the enqueue's caller resumed.
    assert claimer.done()
    assert [job.id for job in claimer.result()] == [enqueued.job.id]


async def test_sqlite_hands_the_job_to_a_waiting_claim(tmp_path: Path) -> None:
    store: Store = SqliteStore(tmp_path / "shoal.db")
    service = QueueService(store)
    await store.open()
    try:
        for _ in range(20):
            claimer = await waiting_claim(service)
            enqueued = await service.enqueue(EnqueueRequest(task="t", queue="q"))
            jobs = await asyncio.wait_for(claimer, 5)
            assert [job.id for job in jobs] == [enqueued.job.id]
            assert jobs[0].attempt == 1
    finally:
        await store.close()


async def test_ready_signal_knows_whether_anyone_waits() -> None:
    signal = ReadySignal()
    assert not signal.waiting
    waiter = asyncio.create_task(signal.wait("default", ["a"], 5))
    await asyncio.sleep(0)
    assert signal.waiting
    signal.notify("default", "a")
    assert await waiter is True
    assert not signal.waiting
    assert await signal.wait("default", ["a"], 0.01) is False


async def test_a_wait_since_a_generation_counts_a_notice_before_it_registered() -> None:
    signal = ReadySignal()
    seen = signal.generation
    waiter = asyncio.create_task(signal.wait("default", ["a"], 5, since=seen))
    signal.notify("default", "a")  # before the waiter's first step: nobody registered yet
    async with asyncio.timeout(1):
        assert await waiter is True
    assert await signal.wait("default", ["a"], 0.01, since=signal.generation) is False


async def test_notify_all_moves_the_generation_even_with_nobody_waiting() -> None:
    # A claim under way when notices may have been missed (PostgreSQL's LISTEN came back)
    # must look again rather than wait.
    signal = ReadySignal()
    seen = signal.generation
    signal.notify_all()
    assert await signal.wait("default", ["a"], 5, since=seen) is True


async def test_subscribers_of_named_kinds_get_only_those_and_publishers_can_ask() -> None:
    bus = EventBus()
    assert not bus.wants("job.succeeded")
    pushed = bus.subscribe(lambda event: True, kinds=("worker.drain",))
    assert bus.wants("worker.drain") and not bus.wants("job.succeeded")
    bus.publish(Event("job.succeeded", "default", 1.0))
    bus.publish(Event("worker.drain", "default", 2.0))
    assert (await pushed.next(0.01)) == Event("worker.drain", "default", 2.0)
    assert await pushed.next(0.01) is None
    everything = bus.subscribe()
    assert bus.wants("job.succeeded")
    everything.close()
    pushed.close()
    assert not bus.wants("worker.drain") and not bus.has_subscribers


async def test_a_completion_builds_no_event_nobody_wants() -> None:
    service = QueueService(MemoryStore())
    await service.store.open()
    drains = service.events.subscribe(kinds=("worker.drain",))
    await service.enqueue(EnqueueRequest(task="t", queue="q"))
    (job,) = await service.claim(ClaimInput(worker_id="w-1", queues=("q",)))
    assert job.lease_token is not None
    await service.complete(LeaseRef(job.id, job.lease_token))
    assert await drains.next(0.01) is None
    assert not service.events.wants("job.succeeded")


async def test_a_woken_claim_is_announced_after_the_enqueue(tmp_path: Path) -> None:
    store: Store = SqliteStore(tmp_path / "shoal.db")
    service = QueueService(store)
    await store.open()
    events = service.events.subscribe()
    try:
        for _ in range(20):
            claimer = await waiting_claim(service)
            await service.enqueue(EnqueueRequest(task="t", queue="q"))
            (job,) = await asyncio.wait_for(claimer, 5)
            kinds = [(await events.next(1.0)) for _ in range(2)]
            assert [(e.kind, e.job_id) for e in kinds if e is not None] == [
                ("job.enqueued", job.id),
                ("job.claimed", job.id),
            ]
    finally:
        await store.close()


class _CountingStore(MemoryStore):
    """A memory store that counts the claims of each worker."""

    def __init__(self) -> None:
        super().__init__()
        self.claims: dict[str, int] = {}

    async def claim(self, request: ClaimRequest) -> list[Job]:
        self.claims[request.worker_id] = self.claims.get(request.worker_id, 0) + 1
        return await super().claim(request)


async def test_a_job_due_soon_wakes_only_the_claims_that_take_it_ahead() -> None:
    store = _CountingStore()
    service = QueueService(store)
    await store.open()
    plain = asyncio.create_task(service.claim(ClaimInput("w-plain", ("q",), wait=5.0)))
    ahead_claim = ClaimInput("w-ahead", ("q",), wait=5.0, lookahead=0.5)
    ahead = asyncio.create_task(service.claim(ahead_claim))
    while len(store.claims) < 2:  # each claimed once and found nothing: both wait now
        await asyncio.sleep(0)
    soon = await service.enqueue(EnqueueRequest(task="t", queue="q", delay=0.05))
    [job] = await asyncio.wait_for(ahead, 5)
    assert job.id == soon.job.id
    await asyncio.sleep(0.01)
    assert store.claims["w-plain"] == 1  # not woken: it would have claimed nothing
    due = await service.enqueue(EnqueueRequest(task="t", queue="q"))
    [job] = await asyncio.wait_for(plain, 5)
    assert job.id == due.job.id
