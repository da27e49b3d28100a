"""Outcomes a worker could not report because its session died, kept for the next session.

A server that stayed up released the dead session's leases when its stream closed, and refuses
these outcomes (their tokens are stale): nothing lost. One that restarted after a crash still
holds the leases in its store: the outcomes are accepted, and the finished jobs do not run again
once their leases expire.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shoal.core.errors import ShoalError
from shoal.core.model import LeaseRef
from shoal.sdk._execution import Outcome
from shoal.sdk._outcomes import Running, report
from shoal.sdk._transport import WorkerSession

if TYPE_CHECKING:
    from shoal.sdk._app import App

__all__ = ["Leftovers"]

logger = logging.getLogger(__name__)


#: Sessions an outcome is tried on before it is dropped: one that ends every session it is
#: sent on must not keep the worker from ever running another job.
MAX_SETTLES = 3


class Leftovers:
    """Outcomes kept by job id until a session takes them (`settle`)."""

    def __init__(self) -> None:
        #: Each with the number of sessions that failed to take it.
        self._outcomes: dict[str, tuple[Running, Outcome, int]] = {}

    def report_later(self, running: Running, outcome: Outcome) -> None:
        """The job ended but its outcome did not reach the service."""
        if outcome.stopped != "lost":  # nothing to report for a lease already gone
            self._outcomes[running.job.id] = (running, outcome, 0)

    def leases(self) -> list[LeaseRef]:
        """The leases of the jobs whose outcomes wait here."""
        return [running.lease for running, _, _ in self._outcomes.values()]

    async def settle(self, app: App, session: WorkerSession) -> None:
        """Report the outcomes on `session`; one that fails for want of a session waits for
        the next, as if it had come after this one, unless `MAX_SETTLES` sessions failed to
        take it: it is dropped then, and its job runs again once its lease expires.
        """
        outcomes, self._outcomes = self._outcomes, {}
        for job_id, (running, outcome, failures) in outcomes.items():
            try:
                await report(app, session, running, outcome)
            except ShoalError as exc:
                self._failed(job_id, running, outcome, failures + 1, exc)

    def _failed(
        self, job_id: str, running: Running, outcome: Outcome, failures: int, exc: ShoalError
    ) -> None:
        extra = {"job_id": job_id, "attempt": running.job.attempt, "settles": failures}
        if failures >= MAX_SETTLES:
            logger.error(
                "dropping the outcome of job %s: %d sessions failed to take it (last: %s)",
                job_id,
                failures,
                exc.message,
                extra={"event": "worker.outcome_dropped", **extra},
            )
            return
        logger.warning(
            "could not report job %s on the new session: %s",
            job_id,
            exc.message,
            extra={"event": "worker.settle_failed", **extra},
        )
        self._outcomes.setdefault(job_id, (running, outcome, failures))
