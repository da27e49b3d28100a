"""The store conformance suite: every `Store` must pass all of it, unchanged.

Use it by subclassing in a test module that provides two fixtures: `store_factory` (a
`StoreFactory`: a callable returning an async context manager over a fresh, empty store) and
`store` (an opened store from that factory)::

    class TestMyStore(StoreContract, StoreProperties):
        pass
"""

from __future__ import annotations

import pytest

from shoal.core.errors import Conflict, LeaseLost, NotFound
from shoal.core.model import JobError, JobState, LeaseRef
from shoal.core.ports import Store, WorkerResume
from shoal.core.transitions import LEASE_LOST_ERROR
from shoal.testing._catalog import CatalogContract
from shoal.testing._claim_ahead import ClaimAheadContract
from shoal.testing._deletion import DeletionContract
from shoal.testing._jobs import T0, StoreFactory, claim, lease, make_job
from shoal.testing._schedules import ScheduleWritesContract
from shoal.testing._steering import SteeringContract

__all__ = ["T0", "StoreContract", "StoreFactory", "claim", "make_job"]

S = JobState


class StoreContract(
    CatalogContract,
    ClaimAheadContract,
    DeletionContract,
    ScheduleWritesContract,
    SteeringContract,
):
    """Behaviour every store must show; one test per promise of `shoal.core.ports.Store`."""

    # --- enqueue and read -------------------------------------------------------------------

    async def test_enqueue_then_get_round_trips_every_field(self, store: Store) -> None:
        job = make_job(
            payload=b"\x00binary\xff",
            content_type="application/octet-stream",
            priority=-7,
            tags=("a", "b"),
            timeout=2.5,
            idempotency_key="k1",
            parent_id="p",
            schedule_id="s",
        )
        [result] = await store.enqueue([job], T0)
        assert result.created and result.job == job
        assert await store.get_job("default", job.id) == job

    async def test_get_is_scoped_to_the_namespace(self, store: Store) -> None:
        job = make_job(namespace="a")
        await store.enqueue([job], T0)
        assert await store.get_job("b", job.id) is None
        assert await store.get_job("a", "no-such-id") is None

    async def test_idempotency_key_returns_the_active_job(self, store: Store) -> None:
        first = make_job(idempotency_key="k")
        await store.enqueue([first], T0)
        [again] = await store.enqueue([make_job(idempotency_key="k")], T0 + 1)
        assert not again.created and again.job.id == first.id
        [other_ns] = await store.enqueue([make_job(idempotency_key="k", namespace="x")], T0)
        assert other_ns.created

    async def test_idempotency_key_frees_after_finish_unless_in_window(self, store: Store) -> None:
        first = make_job(idempotency_key="k")
        await store.enqueue([first], T0)
        [job] = await claim(store)
        await store.complete(lease(job), None, T0 + 1)
        [windowed] = await store.enqueue([make_job(idempotency_key="k")], T0 + 5, 10.0)
        assert not windowed.created and windowed.job.id == first.id
        [fresh] = await store.enqueue([make_job(idempotency_key="k")], T0 + 5)
        assert fresh.created and fresh.job.id != first.id

    async def test_an_older_job_queued_again_holds_its_key_over_a_newer_finished_one(
        self, store: Store
    ) -> None:
        first = make_job(idempotency_key="k")
        await store.enqueue([first], T0)
        await store.cancel("default", first.id, T0 + 1)
        [second] = await store.enqueue([make_job(idempotency_key="k", created_at=T0 + 5)], T0 + 5)
        assert second.created  # the first is finished and no window was asked for
        await store.cancel("default", second.job.id, T0 + 6)
        await store.retry("default", first.id, T0 + 7)  # active again, the older of the two
        [again] = await store.enqueue([make_job(idempotency_key="k", created_at=T0 + 8)], T0 + 8)
        assert not again.created and again.job.id == first.id
        # a window that also covers the newer, finished job: the active one still holds the key
        windowed = make_job(idempotency_key="k", created_at=T0 + 9)
        [again] = await store.enqueue([windowed], T0 + 9, 100.0)
        assert not again.created and again.job.id == first.id

    async def test_duplicate_keys_in_one_batch_give_one_job(self, store: Store) -> None:
        a, b = make_job(idempotency_key="k"), make_job(idempotency_key="k")
        results = await store.enqueue([a, b], T0)
        assert [r.created for r in results] == [True, False]
        assert results[1].job.id == a.id

    # --- claim --------------------------------------------------------------------------------

    async def test_claim_orders_by_priority_then_run_at_then_id(self, store: Store) -> None:
        low = make_job(priority=0, run_at=T0 - 10)
        high_late = make_job(priority=5, run_at=T0 - 1)
        high_early = make_job(priority=5, run_at=T0 - 5)
        await store.enqueue([low, high_late, high_early], T0)
        claimed = await claim(store)
        assert [j.id for j in claimed] == [high_early.id, high_late.id, low.id]

    async def test_claim_leases_with_unique_tokens(self, store: Store) -> None:
        await store.enqueue([make_job(), make_job()], T0)
        claimed = await claim(store, worker_id="w9", now=T0 + 2)
        assert len({j.lease_token for j in claimed}) == 2
        for job in claimed:
            assert job.state is S.RUNNING and job.attempt == 1 and job.worker_id == "w9"
            assert job.lease_expires_at == T0 + 32 and job.started_at == T0 + 2
            assert await store.get_job("default", job.id) == job
        assert await claim(store) == []

    async def test_claim_waits_for_run_at(self, store: Store) -> None:
        later = make_job(run_at=T0 + 10)
        assert later.state is S.SCHEDULED
        await store.enqueue([later], T0)
        assert await claim(store, now=T0 + 9) == []
        [job] = await claim(store, now=T0 + 10)
        assert job.id == later.id

    async def test_claim_takes_due_scheduled_jobs_in_priority_order(self, store: Store) -> None:
        # Due but not promoted yet: a claim must not wait for the promoter, nor skip the order.
        queued = make_job(priority=0)
        due = make_job(priority=5, run_at=T0 + 10)
        later = make_job(priority=9, run_at=T0 + 60)
        await store.enqueue([queued, due, later], T0)
        assert [j.id for j in await claim(store, limit=1, now=T0 + 10)] == [due.id]
        assert [j.id for j in await claim(store, now=T0 + 10)] == [queued.id]

    async def test_claim_takes_due_scheduled_jobs_of_its_queues_and_tasks_only(
        self, store: Store
    ) -> None:
        due = {"run_at": T0 + 10, "task": "a"}
        others = [
            make_job(queue="paused", **due),
            make_job(queue="elsewhere", **due),
            make_job(namespace="other", **due),
            make_job(run_at=T0 + 10, task="b"),
        ]
        mine = make_job(**due)
        await store.enqueue([*others, mine], T0)
        await store.set_queue_paused("default", "paused", True)
        got = await claim(store, now=T0 + 10, queues=("default", "paused"), tasks=("a",))
        assert [j.id for j in got] == [mine.id]

    async def test_claim_interleaves_due_scheduled_and_queued_jobs(self, store: Store) -> None:
        queued_low, queued_mid = make_job(priority=0), make_job(priority=5, run_at=T0 - 1)
        due_top, due_mid = make_job(priority=9, run_at=T0 + 5), make_job(priority=5, run_at=T0 + 2)
        due_low = make_job(priority=0, run_at=T0 + 1)
        await store.enqueue([queued_low, queued_mid, due_top, due_mid, due_low], T0)
        got = await claim(store, limit=4, now=T0 + 10)
        assert [j.id for j in got] == [due_top.id, queued_mid.id, due_mid.id, queued_low.id]

    async def test_claim_breaks_ties_between_queued_and_due_jobs_by_id(self, store: Store) -> None:
        tie = {"priority": 1, "run_at": T0 + 1}
        due_first = make_job(**tie)
        queued = make_job(**tie, state=S.QUEUED)
        due_last = make_job(**tie)
        await store.enqueue([due_last, queued, due_first], T0)
        got = await claim(store, limit=3, now=T0 + 5)
        assert [j.id for j in got] == [due_first.id, queued.id, due_last.id]

    async def test_claim_takes_due_jobs_past_a_burst_in_order_once_promoted(
        self, store: Store
    ) -> None:
        # A store may consider only the earliest scheduled jobs (see `Store.claim`); once the
        # promoter made them queued, the order is exact again.
        burst = [make_job(namespace="other", run_at=T0 + 1) for _ in range(300)]
        mine, queued = make_job(priority=9, run_at=T0 + 2), make_job(priority=0)
        await store.enqueue([*burst, mine, queued], T0)
        await store.promote_due(T0 + 5)
        assert [j.id for j in await claim(store, limit=1, now=T0 + 5)] == [mine.id]

    async def test_claim_skips_paused_queues(self, store: Store) -> None:
        await store.enqueue([make_job()], T0)
        await store.set_queue_paused("default", "default", True)
        assert await claim(store) == []
        await store.set_queue_paused("default", "default", False)
        assert len(await claim(store)) == 1

    async def test_claim_respects_limit_queues_tasks_and_namespace(self, store: Store) -> None:
        jobs = [make_job(queue="q1", task="a") for _ in range(3)]
        jobs += [make_job(queue="q2", task="b"), make_job(queue="q1", namespace="other")]
        await store.enqueue(jobs, T0)
        assert len(await claim(store, limit=2, queues=("q1",))) == 2
        assert await claim(store, queues=("q1", "q2"), tasks=("c",)) == []
        got = await claim(store, queues=("q1", "q2"), tasks=("b",))
        assert [j.task for j in got] == ["b"]
        assert len(await claim(store, queues=("q1", "q2"))) == 1
        assert len(await claim(store, queues=("q1",), namespace="other")) == 1

    # --- leases -------------------------------------------------------------------------------

    async def test_heartbeat_renews_live_and_reports_lost_and_cancelled(self, store: Store) -> None:
        await store.enqueue([make_job(), make_job()], T0)
        a, b = await claim(store)
        await store.cancel("default", b.id, T0 + 1)
        result = await store.heartbeat(
            [lease(a), lease(b), LeaseRef(a.id, "stale"), LeaseRef("nope", "x")], 60.0, T0 + 5
        )
        assert set(result.renewed) == {a.id, b.id}
        assert set(result.lost) == {a.id, "nope"}
        assert result.cancel_requested == (b.id,)
        stored = await store.get_job("default", a.id)
        assert stored is not None and stored.lease_expires_at == T0 + 65

    async def test_a_heartbeat_never_cuts_a_lease(self, store: Store) -> None:
        # claimed for 30 s; a heartbeat renewing by 15 s at +10 s left it 15 s, not 20 s
        await store.enqueue([make_job()], T0)
        [job] = await claim(store)
        assert (await store.heartbeat([lease(job)], 15.0, T0 + 10)).renewed == (job.id,)
        stored = await store.get_job("default", job.id)
        assert stored is not None and stored.lease_expires_at == T0 + 30
        await store.heartbeat([lease(job)], 15.0, T0 + 20)
        stored = await store.get_job("default", job.id)
        assert stored is not None and stored.lease_expires_at == T0 + 35

    async def test_complete_once_with_the_live_token(self, store: Store) -> None:
        await store.enqueue([make_job()], T0)
        [job] = await claim(store)
        with pytest.raises(LeaseLost):
            await store.complete(LeaseRef(job.id, "forged"), b"x", T0 + 1)
        done = await store.complete(lease(job), b"\x00result", T0 + 2)
        assert done.state is S.SUCCEEDED and done.result == b"\x00result"
        assert done.finished_at == T0 + 2 and done.lease_token is None
        with pytest.raises(LeaseLost):
            await store.complete(lease(job), b"again", T0 + 3)
        with pytest.raises(LeaseLost):
            await store.complete(LeaseRef("no-such-job", "t"), None, T0)
        assert await store.get_job("default", job.id) == done

    async def test_fail_retries_with_backoff_then_fails(self, store: Store) -> None:
        await store.enqueue([make_job(max_attempts=2)], T0)
        [job] = await claim(store)
        error = JobError("ValueError", "bad", "Traceback ...")
        retrying = await store.fail(lease(job), error, T0 + 1)
        assert retrying.state is S.SCHEDULED and retrying.run_at == T0 + 6
        assert retrying.error == error and retrying.lease_token is None
        assert await claim(store, now=T0 + 5) == []
        [second] = await claim(store, now=T0 + 6)
        assert second.attempt == 2
        failed = await store.fail(lease(second), error, T0 + 7)
        assert failed.state is S.FAILED and failed.finished_at == T0 + 7

    async def test_fail_honours_retry_delay_and_non_retryable(self, store: Store) -> None:
        await store.enqueue([make_job(), make_job()], T0)
        a, b = await claim(store)
        asked = await store.fail(lease(a), JobError("Retry", ""), T0, retry_delay=0.25)
        assert asked.state is S.SCHEDULED and asked.run_at == T0 + 0.25
        final = await store.fail(lease(b), JobError("TypeError", "x", retryable=False), T0)
        assert final.state is S.FAILED
        with pytest.raises(LeaseLost):
            await store.fail(lease(b), JobError("E", ""), T0)

    async def test_cancel_waiting_running_and_finished(self, store: Store) -> None:
        waiting, running = make_job(), make_job(priority=1)
        await store.enqueue([waiting, running], T0)
        [claimed] = await claim(store, limit=1)
        assert claimed.id == running.id
        assert (await store.cancel("default", waiting.id, T0)).state is S.CANCELLED
        requested = await store.cancel("default", running.id, T0)
        assert requested.state is S.RUNNING and requested.cancel_requested
        ended = await store.fail(lease(claimed), JobError("Cancelled", ""), T0 + 1)
        assert ended.state is S.CANCELLED
        with pytest.raises(Conflict):
            await store.cancel("default", running.id, T0)
        with pytest.raises(NotFound):
            await store.cancel("default", "missing", T0)
        with pytest.raises(NotFound):
            await store.cancel("elsewhere", waiting.id, T0)

    async def test_release_gives_the_attempt_back(self, store: Store) -> None:
        await store.enqueue([make_job()], T0)
        [job] = await claim(store)
        [released] = await store.release([lease(job), LeaseRef("x", "y")], T0 + 1)
        assert released.state is S.QUEUED and released.attempt == 0
        assert released.worker_id is None and released.lease_token is None
        with pytest.raises(LeaseLost):
            await store.complete(lease(job), None, T0 + 2)

    async def test_a_job_taken_ahead_of_its_run_at_waits_for_it_again_when_given_back(
        self, store: Store
    ) -> None:
        # released, or its worker gone, it was queued from now: any worker ran it early
        due = T0 + 0.5
        await store.enqueue([make_job(state=S.SCHEDULED, run_at=due) for _ in range(2)], T0)
        first, second = await claim(store, lookahead=1.0)
        [released] = await store.release([lease(first)], T0 + 0.1)
        [lost] = await store.release_worker("w1", T0 + 0.1, "gone")
        assert lost.id == second.id
        for job in (released, lost):
            assert (job.state, job.run_at) == (S.SCHEDULED, due)
        assert await claim(store, now=T0 + 0.2) == []
        assert len(await claim(store, now=due)) == 2

    async def test_release_worker_requeues_or_fails_its_jobs(self, store: Store) -> None:
        await store.enqueue([make_job(max_attempts=1), make_job(max_attempts=2)], T0)
        jobs = await claim(store, worker_id="gone")
        await store.enqueue([make_job()], T0)
        await claim(store, worker_id="other")
        await store.enqueue([make_job(namespace="elsewhere")], T0)
        [same_id_elsewhere] = await claim(store, worker_id="gone", namespace="elsewhere")
        # a worker's id may repeat in another namespace (pull workers choose theirs): that one's
        # jobs stay leased when this namespace's worker goes
        assert await store.release_worker("gone", T0 + 1, "x", "nowhere") == []
        lost = {
            job.max_attempts: job
            for job in await store.release_worker("gone", T0 + 1, "x", "default")
        }
        assert len(lost) == 2
        assert lost[1].state is S.FAILED and lost[1].error is not None
        assert lost[1].error.type == LEASE_LOST_ERROR
        assert lost[2].state is S.QUEUED and lost[2].attempt == 1
        for job in jobs:
            with pytest.raises(LeaseLost):
                await store.complete(lease(job), None, T0 + 2)
        still = await store.get_job("elsewhere", same_id_elsewhere.id)
        assert still is not None and still.state is S.RUNNING
        [everywhere] = await store.release_worker("gone", T0 + 3, "x")  # no namespace: all
        assert everywhere.id == same_id_elsewhere.id

    async def test_resume_worker_keeps_what_it_holds_and_gives_back_the_rest(
        self, store: Store
    ) -> None:
        await store.enqueue([make_job(priority=3), make_job(priority=2), make_job(priority=1)], T0)
        kept, dropped, stale = await claim(store, worker_id="old")
        await store.enqueue([make_job(priority=9), make_job(namespace="other")], T0)
        [earlier] = await claim(store, worker_id="older")  # an earlier session's, renewed since
        [elsewhere] = await claim(store, worker_id="old", namespace="other")
        held = (lease(kept), lease(earlier), LeaseRef(stale.id, "stale"), LeaseRef("gone", "x"))
        resumed = await store.resume_worker(WorkerResume("default", "new", "old", held), T0 + 1)
        assert sorted(job.id for job in resumed.released) == sorted([dropped.id, stale.id])
        assert [job.id for job in resumed.kept] == [kept.id, earlier.id]
        assert all(job.worker_id == "new" for job in resumed.kept)
        for job in resumed.released:
            assert job.state is S.QUEUED and job.attempt == 0 and job.error is None
            assert job.worker_id is None and job.lease_token is None
        for job in (kept, earlier):
            moved = await store.get_job("default", job.id)
            assert moved is not None and moved.state is S.RUNNING
            assert moved.worker_id == "new" and moved.lease_token == job.lease_token
        other = await store.get_job("other", elsewhere.id)
        assert other is not None and other.worker_id == "old"  # another namespace's: untouched
        with pytest.raises(LeaseLost):
            await store.complete(lease(dropped), None, T0 + 2)
        assert (await store.complete(lease(kept), None, T0 + 2)).state is S.SUCCEEDED
        [released] = await store.release_worker("new", T0 + 3, "gone")
        assert released.id == earlier.id  # the new session's now, released with it

    async def test_reap_expired_takes_back_only_expired_leases(self, store: Store) -> None:
        await store.enqueue([make_job(), make_job()], T0)
        a, b = await claim(store)
        await store.heartbeat([lease(b)], 100.0, T0 + 10)
        assert await store.reap_expired(T0 + 30) == []
        reaped = await store.reap_expired(T0 + 31)
        assert [j.id for j in reaped] == [a.id] and reaped[0].state is S.QUEUED
        [again] = await claim(store, now=T0 + 32, worker_id="w2")
        assert again.id == a.id and again.attempt == 2
        with pytest.raises(LeaseLost):
            await store.complete(lease(a), None, T0 + 33)
        assert (await store.complete(lease(again), None, T0 + 33)).state is S.SUCCEEDED

    async def test_progress_needs_the_live_lease(self, store: Store) -> None:
        await store.enqueue([make_job()], T0)
        [job] = await claim(store)
        await store.set_progress(lease(job), 0.5)
        stored = await store.get_job("default", job.id)
        assert stored is not None and stored.progress == 0.5
        with pytest.raises(LeaseLost):
            await store.set_progress(LeaseRef(job.id, "stale"), 0.7)
