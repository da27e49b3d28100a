"""How a worker tells the service that a job ended: on the live session, else on the next one.

An outcome that cannot be reported for want of a session waits in `Leftovers` for the next
session. One that fails for any other reason (a bug, not a lost service) is replaced by a
failure, so that the job does not stay running until its lease expires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from shoal.core.errors import ShoalError, Unavailable
from shoal.core.model import JobError
from shoal.sdk._execution import Outcome
from shoal.sdk._leftovers import Leftovers
from shoal.sdk._outcomes import Running, report
from shoal.sdk._process import text_of
from shoal.sdk._transport import WorkerSession

if TYPE_CHECKING:
    from shoal.sdk._app import App

__all__ = ["OutcomeReporter", "worker_error"]

logger = logging.getLogger(__name__)


class OutcomeReporter:
    """Reports outcomes on the worker's live session (`session()`), keeping in `leftovers`
    what no session took.
    """

    def __init__(self, app: App, session: Callable[[], WorkerSession | None]) -> None:
        self._app = app
        self._session = session
        self.leftovers = Leftovers()

    async def report_or_fail(self, running: Running, outcome: Outcome) -> None:
        """Report the outcome; if that fails unexpectedly (a bug, not a lost service), report a
        failure instead, rather than leave the job running until its lease expires.
        """
        job_id = running.job.id
        try:
            await self._report(running, outcome)
            return
        except ShoalError as exc:
            logger.warning(
                "job %s: its outcome could not be reported: %s",
                job_id,
                exc.message,
                extra={"event": "worker.error", "job_id": job_id},
            )
            return
        except Exception as exc:
            failure = worker_error(job_id, "could not be reported", exc)
        try:
            await self._report(running, failure)
        except Exception:
            logger.exception(
                "job %s: nor could its failure be reported",
                job_id,
                extra={"event": "worker.error", "job_id": job_id},
            )

    async def _report(self, running: Running, outcome: Outcome) -> None:
        """Report on the live session; what a dead one could not take waits for the next."""
        session = self._session()
        if session is not None:
            try:
                await report(self._app, session, running, outcome)
                return
            except Unavailable:  # the session died meanwhile
                now = self._session()
                if now is not None and now is not session:
                    await report(self._app, now, running, outcome)  # already back
                    return
        self.leftovers.report_later(running, outcome)


def worker_error(job_id: str, what: str, exc: Exception) -> Outcome:
    """The failure to report for a job the worker itself failed on (`exc`, logged here)."""
    logger.exception("job %s %s", job_id, what, extra={"event": "worker.error", "job_id": job_id})
    message = f"the worker failed: the job {what}: {type(exc).__name__}: {text_of(exc)}"
    return Outcome(error=JobError("WorkerError", message))
