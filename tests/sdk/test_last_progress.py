"""What a worker sends of a job's progress as the job ends (`ProgressSender.send_last`), and
a heartbeat's interval when a worker starts again (`Heartbeats.run`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.core.errors import LeaseLost
from shoal.core.model import JobError, LeaseRef
from shoal.sdk._execution import Outcome
from shoal.sdk._heartbeats import Heartbeats
from shoal.sdk._outcomes import Running
from shoal.sdk._progress import ProgressSender
from shoal.testing.store_contract import make_job


class Session:
    """The part of a worker session that progress and heartbeats use, recording calls."""

    heartbeat_interval = 0.2

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[float] = []
        self.beats = 0
        self.error = error

    async def progress(self, lease: LeaseRef, value: float) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(value)

    async def heartbeat(self, leases: list[LeaseRef]) -> Any:
        self.beats += 1
        return type("Result", (), {"lost": (), "cancel_requested": ()})()


def _waiting(value: float | None) -> Running:
    job = make_job()
    running = Running(job, LeaseRef(job.id, "token"))
    running.progress = value
    return running


def _sender(session: Session) -> ProgressSender:
    return ProgressSender(lambda: session, lambda running: True, asyncio.ensure_future)  # type: ignore[arg-type,return-value]


FAILED = Outcome(error=JobError("ValueError", "no"))


@pytest.mark.parametrize(
    ("outcome", "sent"),
    [
        (FAILED, [0.6]),
        (Outcome(stopped="cancelled"), [0.6]),
        (Outcome(stopped="shutdown"), [0.6]),
        (Outcome(value=1), []),  # a success sets 1.0
        (Outcome(stopped="lost"), []),  # the lease is gone: the server would refuse it
    ],
)
async def test_the_value_still_waiting_goes_before_an_outcome_that_keeps_it(
    outcome: Outcome, sent: list[float]
) -> None:
    session = Session()
    running = _waiting(0.6)
    await _sender(session).send_last(running, outcome)
    assert session.sent == sent
    assert running.progress is None  # the background sender has nothing left to send


async def test_nothing_waiting_sends_nothing() -> None:
    session = Session()
    await _sender(session).send_last(_waiting(None), FAILED)
    assert session.sent == []


@pytest.mark.parametrize("error", [LeaseLost("gone"), ConnectionResetError("reset")])
async def test_a_failing_send_never_keeps_the_outcome_from_being_reported(
    error: Exception,
) -> None:
    await _sender(Session(error)).send_last(_waiting(0.6), FAILED)  # does not raise


async def test_a_worker_started_again_beats_at_the_first_interval_until_its_session_says() -> None:
    session: Session | None = Session()
    beats = Heartbeats(lambda: session, {}, lambda job_id, reason: None, first_interval=0.05)
    task = asyncio.ensure_future(beats.run())
    beats.beat_now()
    await asyncio.sleep(0.05)  # the session's interval (0.2 s) is taken up
    task.cancel()
    session = None  # started again: no session yet
    task = asyncio.ensure_future(beats.run())
    await asyncio.sleep(0.01)
    session = Session()
    await asyncio.sleep(0.12)  # at the first interval (0.05 s), not the old session's 0.2 s
    task.cancel()
    assert session.beats >= 1
