"""What a worker still owes the service when its session dies: leases to give back, and
outcomes to report again, on the next session.

A server that stayed up released the session's leases when its stream closed: it skips the
leases and refuses the outcomes (their tokens are stale), which costs nothing. A server that
restarted after a crash still has them in its store: without this, their jobs would wait for
their leases to expire and finished jobs would run again.
"""

from __future__ import annotations

import asyncio
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
    """Leases and outcomes kept, by job id, until a new session takes them (`settle`)."""

    def __init__(self) -> None:
        self._leases: dict[str, LeaseRef] = {}
        self._outcomes: dict[str, tuple[Running, Outcome]] = {}

    def give_back(self, lease: LeaseRef) -> None:
        """The job was stopped unfinished: its lease is to be released."""
        self._leases[lease.job_id] = lease

    def report_later(self, running: Running, outcome: Outcome) -> None:
        """The job ended but its outcome did not reach the service."""
        if outcome.stopped != "lost":  # stopped for the dead session: given back instead
            self._outcomes[running.job.id] = (running, outcome)

    async def settle(self, app: App, session: WorkerSession) -> None:
        """Release the leases and report the outcomes on `session`; what fails is left to the
        lease expiry, as it would have been without this.
        """
        leases, self._leases = list(self._leases.values()), {}
        outcomes, self._outcomes = list(self._outcomes.values()), {}
        results: list[object] = []
        if leases:
            results += await asyncio.gather(session.release(leases), return_exceptions=True)
        reports = (report(app, session, running, outcome) for running, outcome in outcomes)
        results += await asyncio.gather(*reports, return_exceptions=True)
        for result in results:
            if isinstance(result, ShoalError):
                logger.warning(
                    "could not settle what the last session left: %s",
                    result.message,
                    extra={"event": "worker.settle_failed"},
                )
            elif isinstance(result, BaseException):
                raise result
