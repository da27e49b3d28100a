"""The store contract's deletions: what a deleted job leaves behind (nothing)."""

from __future__ import annotations

from shoal.core.ports import Store
from shoal.testing._jobs import T0, claim, lease, make_job

#: A dedupe window that covers every job of these tests: only a deletion frees a key.
_WINDOW = 3600.0


class DeletionContract:
    """Deleting jobs (`delete_job`, `purge_finished`, `purge_queue`, `delete_queue`): part of
    `StoreContract`.
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
