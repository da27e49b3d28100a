"""What the memory store adds to the conformance suite: the shape of its indexes."""

from __future__ import annotations

from shoal.core.model import LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.stores.memory import MemoryStore
from shoal.testing import T0, make_job


async def test_a_claim_pops_no_job_that_waits_for_later() -> None:
    # Delayed jobs and retries in their backoff may have a higher priority than the ready ones:
    # in the queue's heap they would be popped and pushed back by every claim.
    store = MemoryStore()
    await store.open()
    later = [make_job(priority=5, run_at=T0 + 3600) for _ in range(1_000)]
    ready = make_job()
    await store.enqueue([*later, ready], T0)
    assert len(store._ready[("default", "default")]["work"]) == 1  # the delayed wait elsewhere
    request = ClaimRequest("default", ("default",), "w1", 10, 30.0, T0)
    assert [job.id for job in await store.claim(request)] == [ready.id]
    # once due, the promotion at the claim moves them over, in claim order
    request = ClaimRequest("default", ("default",), "w1", 2, 30.0, T0 + 3600)
    assert [job.id for job in await store.claim(request)] == [job.id for job in later[:2]]
    assert len(store._ready[("default", "default")]["work"]) == 998


async def test_a_claim_filtered_by_task_reads_no_job_of_another_task() -> None:
    store = MemoryStore()
    await store.open()
    await store.enqueue([make_job(task="other") for _ in range(1_000)] + [make_job()], T0)
    assert {task: len(heap) for task, heap in store._ready[("default", "default")].items()} == {
        "other": 1_000,
        "work": 1,
    }
    request = ClaimRequest("default", ("default",), "w1", 5, 30.0, T0, tasks=("work",))
    assert [job.task for job in await store.claim(request)] == ["work"]
    assert len(store._ready[("default", "default")]["other"]) == 1_000  # untouched


async def test_deleting_jobs_forgets_their_idempotency_keys() -> None:
    store = MemoryStore()
    await store.open()
    jobs = [make_job(idempotency_key=f"k{i}", queue=f"q{i % 3}") for i in range(6)]
    await store.enqueue(jobs, T0)
    await store.delete_job("default", jobs[0].id)
    assert await store.purge_queue("default", "q1") == 2
    assert await store.delete_queue("default", "q2") == 2
    [job] = await store.claim(ClaimRequest("default", ("q0",), "w1", 10, 30.0, T0))
    await store.complete(LeaseRef(job.id, job.lease_token or ""), None, T0 + 1)
    assert await store.purge_finished(T0 + 2) == 1
    assert store._jobs == {} and store._by_key == {}


async def test_a_key_keeps_each_job_with_it_until_that_job_goes() -> None:
    # every job with a key may hold it (the SQL stores query their index), so each has an
    # entry; a deleted job's goes with it, and the key's once it has none
    store = MemoryStore()
    await store.open()
    old = make_job(idempotency_key="k")
    await store.enqueue([old], T0)
    await store.cancel("default", old.id, T0 + 1)
    [new] = await store.enqueue([make_job(idempotency_key="k")], T0 + 2)
    assert new.created
    assert list(store._by_key[("default", "k")]) == [old.id, new.job.id]
    await store.delete_job("default", old.id)
    assert list(store._by_key[("default", "k")]) == [new.job.id]
    await store.delete_job("default", new.job.id)
    assert store._by_key == {}


async def test_heaps_of_emptied_queues_and_tasks_go() -> None:
    store = MemoryStore()
    await store.open()
    await store.enqueue([make_job(queue=f"q{i}", task=f"t{i}") for i in range(100)], T0)
    for i in range(100):
        assert len(await store.claim(ClaimRequest("default", (f"q{i}",), "w1", 1, 30.0, T0))) == 1
    assert dict(store._ready) == {}


async def test_deleted_and_purged_jobs_leave_no_heap_entries() -> None:
    # A queue nobody consumes: its heap entries were dropped only when a claim popped them.
    store = MemoryStore()
    await store.open()
    for _ in range(3):
        await store.enqueue([make_job(queue="idle") for _ in range(1_000)], T0)
        assert await store.purge_queue("default", "idle") == 1_000
    assert dict(store._ready) == {}
    jobs = [make_job(queue="idle") for _ in range(1_000)]
    await store.enqueue(jobs, T0)
    for job in jobs[:900]:
        await store.delete_job("default", job.id)
    assert sum(len(heap) for heap in store._ready[("default", "idle")].values()) <= 200
    for job in jobs[900:]:
        await store.delete_job("default", job.id)
    assert dict(store._ready) == {}
    later = [make_job(run_at=T0 + 3600) for _ in range(1_000)]
    await store.enqueue(later, T0)
    assert await store.purge_queue("default", "default") == 1_000
    assert store._delayed == []


async def test_cancelled_scheduled_jobs_leave_no_delayed_entries() -> None:
    # a scheduled job cancelled, then deleted or purged, kept its entry in the delayed heap
    # until its run_at, months away
    store = MemoryStore()
    jobs = [make_job(run_at=T0 + 10**7) for _ in range(100)]
    await store.enqueue(jobs, T0)
    for job in jobs:
        await store.cancel("default", job.id, T0)
    for job in jobs[:50]:
        await store.delete_job("default", job.id)
    await store.purge_finished(T0 + 1)
    assert store._jobs == {} and store._delayed == []
