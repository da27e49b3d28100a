from __future__ import annotations

from dataclasses import replace

import pytest

from shoal.core import transitions as t
from shoal.core.errors import Conflict, LeaseLost
from shoal.core.model import TERMINAL_STATES, JobError, JobState
from shoal.testing import T0, make_job

S = JobState


def running(**fields: object):  # type: ignore[no-untyped-def]
    return t.claim(make_job(**fields), "w", "tok", T0, 10.0)


def test_every_state_has_a_row_and_terminal_states_only_retry() -> None:
    assert set(t.ALLOWED) == set(S)
    assert t.ALLOWED[S.SUCCEEDED] == frozenset()
    for state in TERMINAL_STATES - {S.SUCCEEDED}:
        assert t.ALLOWED[state] == {S.QUEUED}


def test_claim_opens_a_lease_and_counts_the_attempt() -> None:
    job = running()
    assert job.state is S.RUNNING and job.attempt == 1
    assert (job.worker_id, job.lease_token, job.lease_expires_at) == ("w", "tok", T0 + 10)


def test_claim_refuses_a_job_that_is_not_waiting() -> None:
    with pytest.raises(Conflict, match="cannot become running"):
        t.claim(running(), "w2", "tok2", T0, 10.0)


def test_outcomes_need_the_live_token() -> None:
    job = running()
    for call in (
        lambda: t.complete(job, "stale", None, T0),
        lambda: t.fail(job, "stale", JobError("E", ""), T0, None),
        lambda: t.release(job, "stale", T0),
        lambda: t.renew(job, "stale", T0, 5.0),
    ):
        with pytest.raises(LeaseLost):
            call()


def test_fail_uses_the_job_policy_then_gives_up() -> None:
    job = running(max_attempts=2, backoff="exponential:base=2,factor=3,cap=100,jitter=0")
    first = t.fail(job, "tok", JobError("E", "m"), T0, None)
    assert first.state is S.SCHEDULED and first.run_at == T0 + 2
    second = t.fail(t.claim(first, "w", "t2", T0 + 2, 10.0), "t2", JobError("E", "m"), T0 + 3, None)
    assert second.state is S.FAILED and second.finished_at == T0 + 3


def test_non_retryable_errors_fail_at_once() -> None:
    job = t.fail(running(max_attempts=5), "tok", JobError("E", "m", retryable=False), T0, None)
    assert job.state is S.FAILED


def test_a_cancel_requested_job_ends_cancelled_whatever_ends_its_lease() -> None:
    job = t.cancel(running(), T0)
    assert job.state is S.RUNNING and job.cancel_requested
    assert t.fail(job, "tok", JobError("E", ""), T0, 1.0).state is S.CANCELLED
    assert t.lose_lease(job, T0, "x").state is S.CANCELLED
    assert t.release(job, "tok", T0).state is S.CANCELLED


def test_lose_lease_counts_the_attempt() -> None:
    assert t.lose_lease(running(max_attempts=2), T0, "gone").state is S.QUEUED
    failed = t.lose_lease(running(max_attempts=1), T0, "gone")
    assert failed.state is S.FAILED and failed.error is not None
    assert failed.error.type == t.LEASE_LOST_ERROR and failed.error.message == "gone"


def test_release_does_not_count_the_attempt() -> None:
    job = t.release(running(), "tok", T0 + 1)
    assert job.state is S.QUEUED and job.attempt == 0 and job.run_at == T0 + 1


def test_hand_over_moves_the_lease_to_the_new_session_only() -> None:
    job = running()
    assert t.hand_over(job, "tok", "w-new") == replace(job, worker_id="w-new")
    with pytest.raises(LeaseLost):
        t.hand_over(job, "stale", "w-new")


def test_cancel_and_retry_rules() -> None:
    cancelled = t.cancel(make_job(), T0)
    assert cancelled.state is S.CANCELLED
    with pytest.raises(Conflict):
        t.cancel(cancelled, T0)
    again = t.retry(cancelled, T0 + 1)
    assert again.state is S.QUEUED and again.attempt == 0 and again.finished_at is None
    with pytest.raises(Conflict):
        t.retry(again, T0)
    done = t.complete(running(), "tok", b"r", T0)
    with pytest.raises(Conflict):
        t.retry(done, T0)


def test_is_claimable() -> None:
    assert t.is_claimable(make_job(), T0)
    assert not t.is_claimable(make_job(run_at=T0 + 1), T0)
    assert not t.is_claimable(running(), T0)
