"""Reporting a job's outcome: on the live session, on the next one when the live one dies, and
as a failure when reporting breaks for another reason.
"""

from __future__ import annotations

from typing import Any

from shoal.core.errors import Unavailable
from shoal.core.model import Job, JobError, JobId, LeaseRef
from shoal.sdk import App, JobState
from shoal.sdk._execution import Outcome
from shoal.sdk._outcomes import Running
from shoal.sdk._reporting import OutcomeReporter
from tests.sdk import tasks

_LEASE = LeaseRef("j1", "token")


class _Session:
    """Records what it is told; `breaks_with` is raised by its first completion."""

    max_outcome_bytes: int | None = None

    def __init__(self, breaks_with: Exception | None = None) -> None:
        self.breaks_with = breaks_with
        self.told: list[tuple[str, Any]] = []

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        if self.breaks_with is not None:
            error, self.breaks_with = self.breaks_with, None
            raise error
        self.told.append(("complete", result))

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None) -> None:
        self.told.append(("fail", error.type))


def _app_and_running() -> tuple[App, Running]:
    app = App("memory://", worker=None)
    app.include(tasks.registry)
    job = Job(JobId("j1"), "ns", "default", "add", b"{}", JobState.RUNNING, 1.0, 1.0, attempt=1)
    return app, Running(job, _LEASE)


async def test_an_outcome_goes_to_the_live_session() -> None:
    app, running = _app_and_running()
    session = _Session()
    await OutcomeReporter(app, lambda: session).report_or_fail(running, Outcome(value=3))
    assert session.told == [("complete", b"3")]


async def test_an_outcome_without_a_session_waits_for_the_next_one() -> None:
    app, running = _app_and_running()
    reporter = OutcomeReporter(app, lambda: None)
    await reporter.report_or_fail(running, Outcome(value=3))
    assert reporter.leftovers.leases() == [_LEASE]


async def test_an_outcome_whose_session_dies_goes_to_the_session_already_back() -> None:
    app, running = _app_and_running()
    dying, back = _Session(Unavailable("the worker stream broke")), _Session()
    live: list[_Session] = [dying]

    async def complete_then_reconnect(lease: LeaseRef, result: bytes | None) -> None:
        live[0] = back  # the worker reconnected while this outcome was on its way
        raise Unavailable("the worker stream broke")

    dying.complete = complete_then_reconnect
    reporter = OutcomeReporter(app, lambda: live[0])
    await reporter.report_or_fail(running, Outcome(value=3))
    assert back.told == [("complete", b"3")]
    assert reporter.leftovers.leases() == []


async def test_an_outcome_whose_session_dies_for_good_waits_for_the_next_one() -> None:
    app, running = _app_and_running()
    session = _Session(Unavailable("the worker stream broke"))
    reporter = OutcomeReporter(app, lambda: session)
    await reporter.report_or_fail(running, Outcome(value=3))
    assert session.told == []
    assert reporter.leftovers.leases() == [_LEASE]


async def test_an_outcome_that_breaks_reporting_is_replaced_by_a_failure() -> None:
    app, running = _app_and_running()
    session = _Session(RuntimeError("a bug in the transport"))
    reporter = OutcomeReporter(app, lambda: session)
    await reporter.report_or_fail(running, Outcome(value=3))
    assert session.told == [("fail", "WorkerError")]
