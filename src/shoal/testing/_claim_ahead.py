"""The store contract's claims with a lookahead: jobs leased shortly before their `run_at`."""

from __future__ import annotations

from shoal.core.model import JobState
from shoal.core.ports import Store
from shoal.testing._jobs import T0, claim, make_job


class ClaimAheadContract:
    """`Store.claim` with `lookahead`: part of `StoreContract`."""

    async def test_lookahead_leases_scheduled_jobs_due_within_it(self, store: Store) -> None:
        soon, later = make_job(run_at=T0 + 0.05), make_job(run_at=T0 + 0.5)
        await store.enqueue([later, soon], T0)
        assert await claim(store) == []
        [job] = await claim(store, lookahead=0.1, worker_id="w7")
        assert job.id == soon.id and job.run_at == soon.run_at
        assert job.state is JobState.RUNNING and job.worker_id == "w7" and job.attempt == 1
        assert job.lease_expires_at == T0 + 30 and job.started_at == T0
        assert await store.get_job("default", job.id) == job
        assert await claim(store, lookahead=0.1) == []

    async def test_due_jobs_come_first_then_the_earliest_ahead(self, store: Store) -> None:
        due = make_job(priority=0)
        ahead_late = make_job(priority=9, run_at=T0 + 0.08)
        ahead_early = make_job(priority=0, run_at=T0 + 0.02)
        await store.enqueue([ahead_late, due, ahead_early], T0)
        assert [j.id for j in await claim(store, limit=1, lookahead=0.1)] == [due.id]
        claimed = await claim(store, limit=5, lookahead=0.1)
        assert [j.id for j in claimed] == [ahead_early.id, ahead_late.id]

    async def test_lookahead_only_fills_the_room_the_due_jobs_leave(self, store: Store) -> None:
        due = [make_job(), make_job()]
        ahead = [make_job(run_at=T0 + 0.01), make_job(run_at=T0 + 0.02)]
        await store.enqueue([*ahead, *due], T0)
        claimed = await claim(store, limit=3, lookahead=0.1)
        assert [j.id for j in claimed] == [due[0].id, due[1].id, ahead[0].id]

    async def test_lookahead_keeps_the_claim_filters(self, store: Store) -> None:
        jobs = [
            make_job(run_at=T0 + 0.05, queue="paused"),
            make_job(run_at=T0 + 0.05, task="other"),
            make_job(run_at=T0 + 0.05, namespace="elsewhere"),
            make_job(run_at=T0 + 0.05, queue="unasked"),
        ]
        await store.enqueue(jobs, T0)
        await store.set_queue_paused("default", "paused", True)
        queues = ("default", "paused")
        assert await claim(store, queues=queues, tasks=("work",), lookahead=0.1) == []
        [job] = await claim(store, queues=queues, lookahead=0.1)
        assert job.id == jobs[1].id
