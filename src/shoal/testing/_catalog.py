"""The store contract's listings and records: jobs, queues and stats, then workers, schedules
and leader leases.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from shoal.core.errors import Conflict, NotFound
from shoal.core.model import JobQuery, JobState, WorkerInfo, WorkerState
from shoal.core.ports import ScheduleRecord, Store
from shoal.testing._jobs import T0, claim, lease, make_job

S = JobState


class CatalogContract:
    """Listing jobs and queues, stats, queue purge and deletion; worker membership, schedule
    records and leader leases: part of `StoreContract`.
    """

    # --- listing ------------------------------------------------------------------------------

    async def test_list_jobs_filters(self, store: Store) -> None:
        jobs = [
            make_job(queue="q1", task="a", tags=("red",), created_at=T0),
            make_job(queue="q1", task="b", created_at=T0 + 1),
            make_job(queue="q2", task="a", tags=("red", "big"), created_at=T0 + 2),
            make_job(namespace="other", created_at=T0 + 3),
        ]
        await store.enqueue(jobs, T0)

        async def ids(**filters: object) -> set[str]:
            page = await store.list_jobs(JobQuery(**filters))  # type: ignore[arg-type]
            return {job.id for job in page.jobs}

        assert await ids() == {j.id for j in jobs[:3]}
        assert await ids(queue="q1") == {jobs[0].id, jobs[1].id}
        assert await ids(task="a") == {jobs[0].id, jobs[2].id}
        assert await ids(tag="big") == {jobs[2].id}
        assert await ids(state=S.RUNNING) == set()
        assert await ids(created_after=T0 + 1, created_before=T0 + 2) == {jobs[1].id}
        assert await ids(namespace="other") == {jobs[3].id}

    async def test_list_jobs_pages_newest_first_without_gaps(self, store: Store) -> None:
        jobs = [make_job() for _ in range(25)]
        await store.enqueue(jobs, T0)
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list_jobs(JobQuery(limit=10, cursor=cursor))
            seen += [job.id for job in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == sorted((j.id for j in jobs), reverse=True)

    async def test_queues_list_counts_and_pause(self, store: Store) -> None:
        await store.enqueue([make_job(queue="b"), make_job(queue="a"), make_job(queue="a")], T0)
        await store.set_queue_paused("default", "idle", True)
        queues = await store.list_queues("default")
        assert [(q.name, q.paused) for q in queues] == [("a", False), ("b", False), ("idle", True)]
        assert queues[0].counts[S.QUEUED] == 2
        assert await store.list_queues("nobody") == []

    async def test_purge_and_delete_queue(self, store: Store) -> None:
        await store.enqueue([make_job(queue="q") for _ in range(3)], T0)
        [job] = await claim(store, limit=1, queues=("q",))
        assert await store.purge_queue("default", "q") == 2
        with pytest.raises(Conflict):
            await store.delete_queue("default", "q")
        await store.complete(lease(job), None, T0)
        assert await store.delete_queue("default", "q") == 1
        assert await store.list_queues("default") == []

    async def test_stats_by_state_and_task(self, store: Store) -> None:
        await store.enqueue(
            [make_job(task="a"), make_job(task="a"), make_job(task="b", queue="q")], T0
        )
        await claim(store, limit=1)
        stats = await store.stats("default")
        assert stats.by_state[S.QUEUED] == 2 and stats.by_state[S.RUNNING] == 1
        assert stats.by_task["a"][S.RUNNING] == 1 and stats.by_task["b"][S.QUEUED] == 1
        assert (await store.stats("default", "q")).total == 1

    # --- workers, schedules, leadership -------------------------------------------------------

    async def test_workers_membership(self, store: Store) -> None:
        worker = WorkerInfo(
            id="w1",
            namespace="default",
            queues=("default", "q"),
            connected_at=T0,
            last_heartbeat=T0,
            state=WorkerState.BUSY,
            tasks=("a",),
            concurrency=4,
            language="node",
            host="h",
            pid=42,
        )
        await store.upsert_worker(worker)
        await store.enqueue([make_job()], T0)
        await claim(store, worker_id="w1")
        assert await store.list_workers() == [replace(worker, running=1)]
        assert await store.touch_worker("w1", T0 + 5)
        assert not await store.touch_worker("nobody", T0 + 5)
        assert not await store.touch_worker("w1", T0 + 6, "other")  # w1 is default's
        assert await store.touch_worker("w1", T0 + 5, "default")
        [listed] = await store.list_workers("default")
        assert listed.last_heartbeat == T0 + 5
        assert await store.list_workers("other") == []
        await store.delete_worker("w1", "other")
        assert len(await store.list_workers()) == 1
        await store.delete_worker("w1")
        assert await store.list_workers() == []

    async def test_get_worker_finds_one_record_by_id_in_any_namespace(self, store: Store) -> None:
        worker = WorkerInfo("w1", "other", ("default",), T0, T0, concurrency=2, pid=7)
        idle = WorkerInfo("w2", "default", ("default",), T0, T0 + 1)
        await store.upsert_worker(worker)
        await store.upsert_worker(idle)
        assert await store.get_worker("w1") == worker
        await store.enqueue([make_job(namespace="other"), make_job(namespace="other")], T0)
        await claim(store, namespace="other", worker_id="w1")
        assert await store.get_worker("w1") == replace(worker, running=2)
        assert await store.get_worker("w2") == idle
        assert await store.get_worker("nobody") is None
        await store.delete_worker("w1")
        assert await store.get_worker("w1") is None

    async def test_schedules_crud(self, store: Store) -> None:
        record = ScheduleRecord("default", "s1", '{"every": 1}', False, T0 + 1, None, T0)
        await store.save_schedule(record)
        await store.save_schedule(ScheduleRecord("other", "s1", "{}", True, None, T0, T0))
        assert await store.get_schedule("default", "s1") == record
        updated = ScheduleRecord("default", "s1", "{}", True, T0 + 2, T0 + 1, T0)
        await store.save_schedule(updated)
        assert await store.list_schedules("default") == [updated]
        assert len(await store.list_schedules()) == 2
        await store.delete_schedule("default", "s1")
        assert await store.get_schedule("default", "s1") is None
        with pytest.raises(NotFound):
            await store.delete_schedule("default", "s1")

    async def test_leader_lease(self, store: Store) -> None:
        assert await store.try_acquire_leader("reaper", "a", 5.0, T0)
        assert not await store.try_acquire_leader("reaper", "b", 5.0, T0 + 1)
        assert await store.try_acquire_leader("reaper", "a", 5.0, T0 + 4)
        assert not await store.try_acquire_leader("reaper", "b", 5.0, T0 + 8)
        assert await store.try_acquire_leader("other", "b", 5.0, T0)
        await store.release_leader("reaper", "a")
        assert await store.try_acquire_leader("reaper", "b", 5.0, T0 + 9)
