"""A worker's heartbeat: every lease it holds renewed together, in one message per interval.

The service's answer names the leases it no longer honours (expired and taken back, or the job
deleted) and the jobs a caller asked to cancel: the worker stops those calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from shoal.sdk._execution import StopReason
from shoal.sdk._outcomes import Running
from shoal.sdk._transport import WorkerSession

__all__ = ["Heartbeats"]

logger = logging.getLogger(__name__)


class Heartbeats:
    """Renews the leases of a worker's `running` jobs on its live session, and stops the jobs
    the service says are lost or cancelled.
    """

    def __init__(
        self,
        session: Callable[[], WorkerSession | None],
        running: Mapping[str, Running],
        stop: Callable[[str, StopReason], None],
        first_interval: float,
    ) -> None:
        self._session = session
        self._running = running
        self._stop = stop
        #: Seconds between beats until a session says its own.
        self._first_interval = first_interval
        self._interval = first_interval
        self._now = asyncio.Event()

    def beat_now(self) -> None:
        """Renew the leases at once (a task asked to, or a new session must hear of them)."""
        self._now.set()

    async def run(self) -> None:
        """Beat until cancelled."""
        self._interval = self._first_interval  # a worker started again waits for its session
        while True:
            # asyncio.timeout rather than wait_for: on Python 3.11 a wait_for cancelled as its
            # inner wait ends can wait for ever on that inner task (a stop hung so, ~1 in 9)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._now.wait()
            self._now.clear()
            session = self._session()
            if session is not None:
                self._interval = session.heartbeat_interval
                await self._beat(session)

    async def _beat(self, session: WorkerSession) -> None:
        sent = {running.lease.job_id: running.lease for running in self._running.values()}
        try:
            # bounded: a heartbeat never answered must not end the heartbeats (and let every
            # running job's lease expire)
            async with asyncio.timeout(max(2 * self._interval, 1.0)):
                result = await session.heartbeat(list(sent.values()))
        except Exception as exc:  # the worker reconnects; keep beating meanwhile
            logger.warning("heartbeat failed: %s", exc, extra={"event": "worker.heartbeat_failed"})
            return
        for job_id in result.lost:
            running = self._running.get(job_id)
            if running is not None and running.lease == sent.get(job_id):
                self._stop(job_id, "lost")  # not a newer attempt claimed meanwhile
        for job_id in result.cancel_requested:
            self._stop(job_id, "cancelled")
