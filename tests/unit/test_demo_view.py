"""The demo's view reports a retry it did not catch in the act (shoal.cli._demo_view)."""

from __future__ import annotations

from dataclasses import replace

from shoal.cli._demo_view import Tracked, change_line
from shoal.core.model import JobError, JobState
from shoal.testing import make_job

FLAKY = JobError("ConnectionError", "payment gateway timed out")


def test_a_retry_between_two_looks_is_still_reported() -> None:
    job = make_job()
    item = Tracked(job.id, "charge_card", JobState.SUCCEEDED)
    # first look: queued; second: already succeeded at attempt 2, its first attempt's error kept
    assert change_line(item, job) is None
    done = replace(job, state=JobState.SUCCEEDED, attempt=2, error=FLAKY)
    lines = (change_line(item, done) or "").split("\n")
    assert len(lines) == 2
    assert "attempt 1 failed (ConnectionError: payment gateway timed out); retrying" in lines[0]
    assert "succeeded[/] after 2 attempt(s)" in lines[1]
    assert change_line(item, done) is None  # nothing new


def test_a_retry_seen_waiting_is_reported_once() -> None:
    job = make_job()
    item = Tracked(job.id, "charge_card", JobState.SUCCEEDED)
    waiting = replace(job, state=JobState.SCHEDULED, attempt=1, error=FLAKY)
    assert "attempt 1 failed" in (change_line(item, waiting) or "")
    running = replace(waiting, state=JobState.RUNNING, attempt=2)
    assert change_line(item, running) is None  # the same retry, already shown


def test_a_job_out_of_attempts_shows_its_retries_without_the_last_error() -> None:
    job = make_job()
    item = Tracked(job.id, "ship_order", JobState.FAILED)
    failed = replace(job, state=JobState.FAILED, attempt=2, error=FLAKY)
    retry, end = (change_line(item, failed) or "").split("\n")
    assert retry.endswith("attempt 1 failed; retrying")
    assert "failed[/] after 2 attempt(s)" in end
    once = Tracked(job.id, "validate_order", JobState.FAILED)
    assert "retrying" not in (change_line(once, replace(failed, attempt=1)) or "")
