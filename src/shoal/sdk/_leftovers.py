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


class Leftovers:
    """Outcomes kept by job id until a session takes them (`settle`)."""

    def __init__(self) -> None:
        self._outcomes: dict[str, tuple[Running, Outcome]] = {}

    def report_later(self, running: Running, outcome: Outcome) -> None:
        """The job ended but its outcome did not reach the service."""
        if outcome.stopped != "lost":  # nothing to report for a lease already gone
            self._outcomes[running.job.id] = (running, outcome)

    def leases(self) -> list[LeaseRef]:
        """The leases of the jobs whose outcomes wait here."""
        return [running.lease for running, _ in self._outcomes.values()]

    async def settle(self, app: App, session: WorkerSession) -> None:
        """Report the outcomes on `session`; one that fails for want of a session waits for
        the next, as if it had come after this one.
        """
        outcomes, self._outcomes = self._outcomes, {}
        for job_id, (running, outcome) in outcomes.items():
            try:
                await report(app, session, running, outcome)
            except ShoalError as exc:
                logger.warning(
                    "could not report job %s on the new session: %s",
                    job_id,
                    exc.message,
                    extra={"event": "worker.settle_failed", "job_id": job_id},
                )
                self._outcomes.setdefault(job_id, (running, outcome))
