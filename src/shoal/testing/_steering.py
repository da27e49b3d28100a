"""The store contract's steering of jobs from outside: retry, delete, promote when due, and
purge the finished.
"""

from __future__ import annotations

import pytest

from shoal.core.errors import Conflict, NotFound
from shoal.core.model import JobError, JobState
from shoal.core.ports import Store
from shoal.testing._jobs import T0, claim, lease, make_job

S = JobState


class SteeringContract:
    """`Store.retry`, `Store.delete_job`, `Store.promote_due` and `Store.purge_finished`: part of
    `StoreContract`.
    """

    async def test_retry_requeues_failed_and_cancelled_only(self, store: Store) -> None:
        await store.enqueue([make_job(max_attempts=1)], T0)
        [job] = await claim(store)
        await store.fail(lease(job), JobError("E", "m"), T0 + 1)
        again = await store.retry("default", job.id, T0 + 2)
        assert again.state is S.QUEUED and again.attempt == 0 and again.error is None
        assert again.finished_at is None and again.run_at == T0 + 2
        with pytest.raises(Conflict):
            await store.retry("default", job.id, T0 + 3)
        with pytest.raises(NotFound):
            await store.retry("default", "missing", T0)

    async def test_retry_refuses_a_job_whose_key_another_active_job_holds(
        self, store: Store
    ) -> None:
        # the key returns the job that holds it while that one is not finished: retrying the
        # older one made two active jobs with one key
        first = make_job(idempotency_key="order-42")
        await store.enqueue([first], T0)
        await store.cancel("default", first.id, T0 + 1)
        second = make_job(idempotency_key="order-42")
        [stored] = await store.enqueue([second], T0 + 2)
        assert stored.created
        with pytest.raises(Conflict, match=second.id):
            await store.retry("default", first.id, T0 + 3)
        kept = await store.get_job("default", first.id)
        assert kept is not None and kept.state is S.CANCELLED
        await store.cancel("default", second.id, T0 + 4)
        again = await store.retry("default", first.id, T0 + 5)
        assert again.state is S.QUEUED

    async def test_delete_refuses_running_jobs(self, store: Store) -> None:
        running, waiting = make_job(priority=1), make_job()
        await store.enqueue([running, waiting], T0)
        await claim(store, limit=1)
        with pytest.raises(Conflict):
            await store.delete_job("default", running.id)
        await store.delete_job("default", waiting.id)
        assert await store.get_job("default", waiting.id) is None
        with pytest.raises(NotFound):
            await store.delete_job("default", waiting.id)

    async def test_promote_due_and_next_due(self, store: Store) -> None:
        await store.enqueue(
            [make_job(queue="q", run_at=T0 + 5), make_job(queue="r", run_at=T0 + 9)], T0
        )
        due = await store.promote_due(T0 + 1)
        assert due.promoted == () and due.next_due_at == T0 + 5
        due = await store.promote_due(T0 + 5)
        assert due.promoted == (("default", "q"),) and due.next_due_at == T0 + 9
        counts = (await store.stats("default")).by_state
        assert counts[S.QUEUED] == 1 and counts[S.SCHEDULED] == 1

    async def test_purge_finished_keeps_recent_and_active(self, store: Store) -> None:
        await store.enqueue([make_job(), make_job(), make_job()], T0)
        a, b = await claim(store, limit=2)
        await store.complete(lease(a), None, T0 + 1)
        await store.complete(lease(b), None, T0 + 10)
        assert await store.purge_finished(T0 + 5) == 1
        assert await store.get_job("default", a.id) is None
        assert await store.get_job("default", b.id) is not None
