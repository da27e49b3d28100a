"""A job's progress on its way to the service: only the latest value waits, and a job sends at
most one message every `PROGRESS_EVERY` seconds, but for the value still waiting when it fails
or stops, which goes out at once, before the outcome.

A task reporting in a tight loop sent a message per call, each a store write on the server,
and 100,000 of them held up the server's reading of the worker's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from shoal.core.errors import ShoalError
from shoal.sdk._execution import Outcome
from shoal.sdk._outcomes import Running
from shoal.sdk._transport import WorkerSession

__all__ = ["PROGRESS_EVERY", "ProgressSender"]

logger = logging.getLogger(__name__)

#: Seconds between two progress messages of one job (the latest value is sent).
PROGRESS_EVERY = 0.1


class ProgressSender:
    """Sends the progress a worker's jobs report, on the worker's live session."""

    def __init__(
        self,
        session: Callable[[], WorkerSession | None],
        holds: Callable[[Running], bool],
        detach: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        #: The live session, if any; whether the worker still holds a job's lease; how a
        #: background send is started (and kept until it ends).
        self._session = session
        self._holds = holds
        self._detach = detach

    def report(self, running: Running, value: float) -> None:
        """Keep `value` as the job's latest; send it now, or when the job's turn comes."""
        running.progress = value
        if not running.reporting:
            running.reporting = True
            self._detach(self._send(running))

    async def _send(self, running: Running) -> None:
        try:
            while (value := running.progress) is not None:
                running.progress = None
                session = self._session()
                if session is None or not self._holds(running):
                    return  # the job ended: its outcome says the rest
                with contextlib.suppress(ShoalError):
                    await session.progress(running.lease, value)
                await asyncio.sleep(PROGRESS_EVERY)
        finally:
            running.reporting = False

    async def send_last(self, running: Running, outcome: Outcome) -> None:
        """Send the value still waiting for its turn before an outcome that keeps it.

        A job that fails, retries or stops keeps the progress it reached (a success sets 1.0,
        a lost lease can store nothing), so a value reported in the job's last
        `PROGRESS_EVERY` must not be dropped. Never raises: the outcome matters more.
        """
        value, running.progress = running.progress, None
        session = self._session()
        kept = outcome.error is not None or outcome.stopped not in (None, "lost")
        if value is None or session is None or not kept:
            return
        try:
            await session.progress(running.lease, value)
        except ShoalError:
            pass  # the outcome is reported all the same
        except Exception:
            logger.exception(
                "job %s: its last progress could not be sent",
                running.job.id,
                extra={"event": "worker.error", "job_id": running.job.id},
            )
