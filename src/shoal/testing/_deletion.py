"""The store contract's deletions: what a deleted job leaves behind (nothing), and workers
forgotten after a long silence.
"""

from __future__ import annotations

from dataclasses import replace

from shoal.core.model import WorkerInfo
from shoal.core.ports import Store
from shoal.testing._jobs import T0, claim, lease, make_job

#: A dedupe window that covers every job of these tests: only a deletion frees a key.
_WINDOW = 3600.0


class DeletionContract:
    """Deleting jobs (`delete_job`, `purge_finished`, `purge_queue`, `delete_queue`) and
    forgetting silent workers (`forget_workers`): part of `StoreContract`.
    """

    async def _enqueue_again(self, store: Store, key: str) -> bool:
        [again] = await store.enqueue([make_job(idempotency_key=key)], T0 + 10, _WINDOW)
        return again.created

    async def test_a_deleted_job_frees_its_idempotency_key(self, store: Store) -> None:
        job = make_job(idempotency_key="k")
        await store.enqueue([job], T0)
        assert not await self._enqueue_again(store, "k")
        await store.delete_job("default", job.id)
        assert await self._enqueue_again(store, "k")

    async def test_deleting_the_newest_job_of_a_key_leaves_the_older_holding_it(
        self, store: Store
    ) -> None:
        # a finished job's key is free to a request with no dedupe window: a second job takes
        # it; once that one is deleted, the first still holds the key within a window
        first = make_job(idempotency_key="k")
        await store.enqueue([first], T0)
        [job] = await claim(store)
        await store.complete(lease(job), None, T0 + 1)
        [second] = await store.enqueue([make_job(idempotency_key="k", created_at=T0 + 5)], T0 + 5)
        assert second.created
        await store.delete_job("default", second.job.id)
        [again] = await store.enqueue([make_job(idempotency_key="k")], T0 + 10, _WINDOW)
        assert not again.created and again.job.id == first.id

    async def test_a_purged_finished_job_frees_its_idempotency_key(self, store: Store) -> None:
        await store.enqueue([make_job(idempotency_key="k")], T0)
        [job] = await claim(store)
        await store.complete(lease(job), None, T0 + 1)
        assert not await self._enqueue_again(store, "k")
        assert await store.purge_finished(T0 + 2) == 1
        assert await self._enqueue_again(store, "k")

    async def test_a_purged_or_deleted_queue_frees_its_keys(self, store: Store) -> None:
        await store.enqueue([make_job(idempotency_key="a"), make_job(idempotency_key="b")], T0)
        await store.enqueue([make_job(idempotency_key="c", queue="gone")], T0)
        assert await store.purge_queue("default", "default") == 2
        assert await store.delete_queue("default", "gone") == 1
        for key in ("a", "b", "c"):
            assert await self._enqueue_again(store, key)

    async def test_forget_workers_takes_the_silent_that_hold_no_lease(self, store: Store) -> None:
        def worker(worker_id: str, last_heartbeat: float, namespace: str = "default") -> WorkerInfo:
            return WorkerInfo(worker_id, namespace, ("default",), T0, last_heartbeat)

        silent, other_ns = worker("silent", T0), worker("elsewhere", T0 + 1, "other")
        for record in (silent, other_ns, worker("holder", T0), worker("recent", T0 + 50)):
            await store.upsert_worker(record)
        await store.enqueue([make_job()], T0)
        await claim(store, worker_id="holder", lease_ttl=3600.0)  # a lease outlives silence
        assert await store.touch_worker("recent", T0 + 100)
        forgotten = await store.forget_workers(T0 + 60)
        assert sorted(forgotten, key=lambda w: w.id) == [replace(other_ns, running=0), silent]
        assert [w.id for w in await store.list_workers()] == ["holder", "recent"]
        assert await store.forget_workers(T0 + 60) == []

    async def test_forget_workers_stops_at_the_limit(self, store: Store) -> None:
        for i in range(5):
            await store.upsert_worker(WorkerInfo(f"w{i}", "default", ("default",), T0, T0))
        assert len(await store.forget_workers(T0 + 1, limit=3)) == 3
        assert len(await store.forget_workers(T0 + 1, limit=3)) == 2
        assert await store.list_workers() == []
