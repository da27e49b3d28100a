"""Properties every store must keep under any interleaving: a hypothesis state machine of the job
life cycle against a simple model, and concurrent claimers. Mixed into the conformance suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shoal.core.errors import Conflict, LeaseLost
from shoal.core.model import TERMINAL_STATES, JobError, JobState, LeaseRef
from shoal.core.ports import Store
from shoal.testing._jobs import T0, StoreFactory, make_job

__all__ = ["StoreProperties", "job_lifecycle_machine"]

R = TypeVar("R")
S = JobState
LEASE_TTL = 10.0


def job_lifecycle_machine(factory: StoreFactory) -> type[RuleBasedStateMachine]:
    """A state machine class that drives a fresh store from `factory` per example."""

    class JobLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.context: AbstractAsyncContextManager[Store] = factory()
            self.store = self.run(self.context.__aenter__())
            self.now = T0
            self.expected: dict[str, S] = {}
            self.live: dict[str, str] = {}  # job id -> live lease token
            self.stale: list[LeaseRef] = []
            self.cancel_asked: set[str] = set()

        def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
            return self.loop.run_until_complete(coroutine)

        def teardown(self) -> None:
            self.run(self.context.__aexit__(None, None, None))
            self.loop.close()

        def _lose(self, job_id: str) -> None:
            self.stale.append(LeaseRef(job_id, self.live.pop(job_id)))

        @rule(count=st.integers(1, 3), delay=st.sampled_from([0.0, 0.0, 5.0]))
        def enqueue(self, count: int, delay: float) -> None:
            jobs = [make_job(created_at=self.now, run_at=self.now + delay) for _ in range(count)]
            for result in self.run(self.store.enqueue(jobs, self.now)):
                assert result.created
                self.expected[result.job.id] = result.job.state

        @rule(limit=st.integers(1, 4))
        def claim(self, limit: int) -> None:
            from shoal.core.ports import ClaimRequest

            request = ClaimRequest("default", ("default",), "w", limit, LEASE_TTL, self.now)
            for job in self.run(self.store.claim(request)):
                assert job.id not in self.live, "a job was leased twice"
                assert self.expected[job.id] in (S.QUEUED, S.SCHEDULED)
                self.expected[job.id] = S.RUNNING
                self.live[job.id] = job.lease_token or ""

        @precondition(lambda self: self.live)
        @rule(data=st.data())
        def complete(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(sorted(self.live)))
            job = self.run(self.store.complete(LeaseRef(job_id, self.live[job_id]), b"r", self.now))
            assert job.state is S.SUCCEEDED
            self.expected[job_id] = S.SUCCEEDED
            self._lose(job_id)

        @precondition(lambda self: self.live)
        @rule(data=st.data(), retryable=st.booleans())
        def fail(self, data: st.DataObject, retryable: bool) -> None:
            job_id = data.draw(st.sampled_from(sorted(self.live)))
            error = JobError("E", "m", retryable=retryable)
            job = self.run(self.store.fail(LeaseRef(job_id, self.live[job_id]), error, self.now))
            if job_id in self.cancel_asked:
                assert job.state is S.CANCELLED
            else:
                assert job.state in (S.SCHEDULED, S.FAILED)
                assert job.state is S.FAILED or (retryable and job.attempt < job.max_attempts)
            self.expected[job_id] = job.state
            self._lose(job_id)

        @precondition(lambda self: self.stale)
        @rule(data=st.data())
        def stale_outcome_is_refused(self, data: st.DataObject) -> None:
            ref = data.draw(st.sampled_from(self.stale))
            before = self.run(self.store.get_job("default", ref.job_id))
            try:
                self.run(self.store.complete(ref, b"late", self.now))
            except LeaseLost:
                pass
            else:
                raise AssertionError("a stale lease completed a job")
            assert self.run(self.store.get_job("default", ref.job_id)) == before

        @precondition(lambda self: self.expected)
        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(sorted(self.expected)))
            try:
                job = self.run(self.store.cancel("default", job_id, self.now))
            except Conflict:
                assert self.expected[job_id] in TERMINAL_STATES
                return
            if self.expected[job_id] is S.RUNNING:
                assert job.state is S.RUNNING and job.cancel_requested
                self.cancel_asked.add(job_id)
            else:
                assert job.state is S.CANCELLED
                self.expected[job_id] = S.CANCELLED

        @precondition(lambda self: self.live)
        @rule()
        def heartbeat(self) -> None:
            refs = [LeaseRef(job_id, token) for job_id, token in self.live.items()]
            result = self.run(self.store.heartbeat(refs, LEASE_TTL, self.now))
            assert set(result.renewed) == set(self.live) and not result.lost

        @rule(seconds=st.sampled_from([1.0, 6.0, 11.0]))
        def advance_and_reap(self, seconds: float) -> None:
            self.now += seconds
            for job in self.run(self.store.reap_expired(self.now)):
                assert job.id in self.live, "reaped a job that had no live lease"
                self.expected[job.id] = job.state
                self.cancel_asked.discard(job.id)
                self._lose(job.id)

        @invariant()
        def no_job_lost_and_states_match(self) -> None:
            for job_id, state in self.expected.items():
                job = self.run(self.store.get_job("default", job_id))
                assert job is not None, f"job {job_id} was lost"
                due_scheduled = state is S.SCHEDULED and job.state is S.QUEUED
                assert job.state is state or due_scheduled, (job.state, state)
                if job.state is S.RUNNING:
                    assert job.lease_token == self.live[job_id]

    return JobLifecycle


class StoreProperties:
    """Property tests; needs the `store_factory` and `store` fixtures like `StoreContract`."""

    def test_job_lifecycle_state_machine(self, store_factory: StoreFactory) -> None:
        machine = job_lifecycle_machine(store_factory)
        machine.TestCase.settings = settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        machine.TestCase().runTest()

    async def test_concurrent_claimers_never_share_a_job(self, store: Store) -> None:
        total = 600
        for start in range(0, total, 200):
            await store.enqueue([make_job() for _ in range(min(200, total - start))], T0)
        done: list[str] = []

        async def claimer(worker: str) -> None:
            from shoal.core.ports import ClaimRequest

            while True:
                request = ClaimRequest("default", ("default",), worker, 7, 30.0, T0)
                jobs = await store.claim(request)
                if not jobs:
                    return
                for job in jobs:
                    await store.complete(job.lease, None, T0)
                    done.append(job.id)

        await asyncio.gather(*(claimer(f"w{i}") for i in range(8)))
        assert len(done) == total and len(set(done)) == total
        stats = await store.stats("default")
        assert stats.by_state[S.SUCCEEDED] == total
