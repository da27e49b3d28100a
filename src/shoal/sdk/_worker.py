"""The worker runtime: claim jobs of some queues, run them in a pool, report their outcomes.

One asyncio loop drives everything. Async tasks run on it; sync tasks run in threads; with
`pool="process"` (for the worker, or for one task) tasks run in warm task processes. All leases
are renewed together by one heartbeat. Stopping is graceful: take nothing more, let running
jobs finish for a while, then stop them and give their jobs back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from shoal.core.errors import InvalidArgument, ShoalError, Unavailable
from shoal.core.model import ACTIVE_STATES, Job, WorkerInfo
from shoal.core.validation import check_name
from shoal.sdk._execution import Pool, StopReason
from shoal.sdk._heartbeats import Heartbeats
from shoal.sdk._loops import on_loop
from shoal.sdk._outcomes import Placement, Running, WorkerConfig, execute
from shoal.sdk._procpool import ProcessPool
from shoal.sdk._progress import ProgressSender
from shoal.sdk._reporting import OutcomeReporter, worker_error
from shoal.sdk._transport import MAX_PREFETCH, LostSession, WorkerSession

if TYPE_CHECKING:
    from shoal.sdk._app import App

__all__ = ["Worker", "WorkerConfig"]

logger = logging.getLogger(__name__)

#: Longest single wait for work; the claim is cancelled at once when the worker stops.
_CLAIM_WAIT = 30.0
#: Seconds to wait before asking a failing service again.
_BACKOFF = 1.0


class Worker:
    """Runs jobs of `app`'s tasks from `queues` (every queue of the app's tasks when None).

    Args:
        app: The app whose tasks this worker runs, and whose transport it uses.
        queues: The queues to take jobs from.
        concurrency: Jobs run at once.
        pool: `thread` runs sync tasks in a thread pool of `concurrency` threads, `asyncio` in
            the loop's default executor; `process` runs every task in warm task processes.
            A task declared with its own `pool` runs there.
        shutdown_grace: Seconds running jobs may take to finish when the worker stops.
        cancel_grace: Seconds a cancelled process may take to stop before it is terminated.
    """

    def __init__(
        self,
        app: App,
        queues: tuple[str, ...] | list[str] | None = None,
        concurrency: int = 4,
        pool: Pool = "thread",
        *,
        shutdown_grace: float = 30.0,
        cancel_grace: float = 2.0,
        prefetch: int = 0,
    ) -> None:
        if concurrency < 1:
            raise InvalidArgument("concurrency", "must be at least 1")
        if not 0 <= prefetch <= MAX_PREFETCH:
            raise InvalidArgument("prefetch", f"must be between 0 and {MAX_PREFETCH}")
        if pool not in ("asyncio", "thread", "process"):
            raise InvalidArgument("pool", f"unknown pool {pool!r}; use asyncio, thread or process")
        self.app = app
        self.queues = tuple(queues) if queues else None
        self.concurrency = concurrency
        self.pool: Pool = pool
        self.shutdown_grace = shutdown_grace
        self.cancel_grace = cancel_grace
        #: Jobs leased beyond the free slots (remote workers): see `GrpcSession`.
        self.prefetch = prefetch
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._session: WorkerSession | None = None
        #: Jobs holding a lease here: running, or reporting their outcome.
        self._running: dict[str, Running] = {}
        #: Jobs whose call is running: what `concurrency` bounds.
        self._executing = 0
        #: Reports outcomes; keeps those that found no live session for the next one.
        self._reporter = OutcomeReporter(app, lambda: self._session)
        #: A session that died, until a new one is open (see `_reconnect`); the leases it
        #: held are named anew at each attempt (`_lost`).
        self._lost_session: LostSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._processes: ProcessPool | None = None
        self._loops: list[asyncio.Task[None]] = []
        #: Claims in flight: the claim loop's, and run_until_idle's beside it on a started
        #: worker. stop() cancels them all (one left would take jobs during the grace).
        self._claims: set[asyncio.Task[list[Job]]] = set()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._closed = asyncio.Event()
        #: Where calls run; made once per connection (the pools live as long).
        self._placement: Placement | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress = ProgressSender(lambda: self._session, self._holds, self._detach)
        self._heartbeats = Heartbeats(lambda: self._session, self._running, self._stop, _BACKOFF)

    @classmethod
    def from_config(cls, app: App, config: WorkerConfig) -> Worker:
        """A worker built from a `WorkerConfig`."""
        return cls(
            app,
            config.queues,
            config.concurrency,
            config.pool,
            shutdown_grace=config.shutdown_grace,
            cancel_grace=config.cancel_grace,
        )

    @property
    def running(self) -> int:
        """Jobs leased to this worker now: running, or reporting how they ended (a slot of
        `concurrency` frees when the call ends; the lease, when the outcome is acked).
        """
        return len(self._running)

    def _queues(self) -> tuple[str, ...]:
        return self.queues or self.app.queues()

    # --- lifecycle --------------------------------------------------------------------------

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            namespace=self.app.namespace,
            queues=self._queues(),
            connected_at=0.0,
            last_heartbeat=0.0,
            concurrency=self.concurrency,
            # a worker takes only jobs it can run: apps that share a namespace and queues (or
            # two versions of one app, in a rolling deploy) leave each other's jobs alone
            tasks=_nameable(self.app.task_names()),
            host=socket.gethostname(),
            pid=os.getpid(),
        )

    async def _connect(self) -> WorkerSession:
        if self._session is None:
            await self.app.start()
            self._loop = asyncio.get_running_loop()
            self._session = await self.app.transport.connect_worker(
                self._info(), self._cancel_requested, prefetch=self.prefetch
            )
            if self.pool == "thread":
                self._executor = ThreadPoolExecutor(self.concurrency, f"shoal-{self.pool}")
            self._processes = ProcessPool()  # starts processes only for calls that need one
            self._placement = Placement(
                self.pool, self._executor, self.cancel_grace, self._processes
            )
            self._stopping.clear()
            self._closed.clear()
            self._loops.append(asyncio.create_task(self._heartbeats.run()))
            logger.info(
                "worker %s started on queues %s",
                self.id,
                ",".join(self._queues()),
                extra={"event": "worker.started", "worker_id": self.id},
            )
        return self._session

    async def _reconnect(self) -> None:
        """The session died: open a new one, settle on it what the old one left, and renew
        the leases of what still runs.

        A server that stayed up released the session's leases when its stream closed: the
        heartbeat reports them lost and those jobs stop. One that restarted after a crash still
        has them in its store: the new session takes over those the worker names as held, and
        the jobs carry on and report as usual; the server gives back at once what else the old
        session held (assignments lost in flight, prefetched jobs), rather than after its lease.
        """
        old, self._session = self._session, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
            # kept until a new session is welcomed: this attempt may fail (the server is not
            # back yet), and the next one must still name the lost session
            if old.session_secret:
                self._lost_session = LostSession(old.session_secret, (), old.max_held)
        session = await self.app.transport.connect_worker(
            self._info(), self._cancel_requested, prefetch=self.prefetch, lost=self._lost()
        )
        self._lost_session = None
        self._session = session
        logger.info("worker %s reconnected", self.id, extra={"event": "worker.reconnected"})
        await self._reporter.leftovers.settle(self.app, session)
        self._heartbeats.beat_now()

    def _lost(self) -> LostSession | None:
        if self._lost_session is None:
            return None
        running = [running.lease for running in self._running.values()]
        held = dict.fromkeys([*running, *self._reporter.leftovers.leases()])  # a job may be in both
        return replace(self._lost_session, held=tuple(held))

    async def start(self) -> None:
        """Connect and run in the background until `stop()`."""
        await self._connect()
        self._loops.append(asyncio.create_task(self._claim_loop()))

    async def run(self) -> None:
        """Connect and run until `stop()` is called (from a signal handler, another task)."""
        await self.start()
        await self._closed.wait()

    async def stop(self) -> None:
        """Stop gracefully: take nothing more, give running jobs `shutdown_grace` seconds to
        finish, then stop them and give their jobs back.
        """
        self._stopping.set()
        for claim in self._claims:
            claim.cancel()
        await self._shutdown()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _shutdown(self) -> None:
        self._lost_session = None  # a stopped worker resumes nothing
        if self._session is None and not self._loops:
            return  # never started
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace)
        for job_id in list(self._running):
            self._stop(job_id, "shutdown")
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        session, self._session = self._session, None
        if session is not None:  # None when the service was lost and not found again
            await session.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._processes is not None:
            await self._processes.close()
            self._processes = None
        self._closed.set()
        logger.info("worker %s stopped", self.id, extra={"event": "worker.stopped"})

    # --- taking work ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            if self._session is not None and self._session.draining:
                await self._drain_and_reconnect()
                continue
            free = self.concurrency - self._executing
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            jobs = await self._claim(free, _CLAIM_WAIT)
            if jobs is None:
                return
            for job in jobs:
                self._spawn(job)

    async def _claim(self, limit: int, wait: float) -> list[Job] | None:
        """Jobs claimed, or None when the worker stops (before or meanwhile)."""
        if self._stopping.is_set():
            return None  # stop() cancelled the claims in flight: no new one
        if self._session is None:
            await self._recover()
            return []
        claim = asyncio.create_task(self._session.claim(self._queues(), limit, wait))
        self._claims.add(claim)
        claim.add_done_callback(self._claims.discard)
        try:
            return await claim
        except asyncio.CancelledError:
            if self._stopping.is_set() and not _being_cancelled():
                return None
            raise
        except Unavailable as exc:
            logger.warning(
                "the service is unavailable (%s); reconnecting",
                exc.message,
                extra={"event": "worker.disconnected", "worker_id": self.id},
            )
            await self._recover()
            return []
        except Exception:
            logger.exception("claiming failed", extra={"event": "worker.claim_failed"})
            await asyncio.sleep(_BACKOFF)  # before asking a failing service again
            return []

    async def _drain_and_reconnect(self) -> None:
        logger.info("draining: finishing %d job(s)", len(self._running))
        while self._running and not self._stopping.is_set():
            self._slot_freed.clear()
            await self._slot_freed.wait()
        if not self._stopping.is_set():
            await self._recover()

    async def _recover(self) -> None:
        await asyncio.sleep(_BACKOFF)
        if self._stopping.is_set():
            return
        try:
            await self._reconnect()
        except ShoalError as exc:
            logger.warning("reconnecting failed: %s", exc.message, extra={"event": "worker.error"})

    async def run_until_idle(self, timeout: float | None = None) -> None:
        """Burst mode: run jobs until none of the worker's queues has a job queued, scheduled
        or running (delayed jobs and retries are waited for), then stop, unless the worker
        was started before.
        """
        owned = self._session is None
        try:
            async with asyncio.timeout(timeout):
                await self._connect()
                await self._drain_queues()
        finally:
            if owned:
                await self.stop()

    async def _drain_queues(self) -> None:
        while True:
            free = self.concurrency - self._executing
            if free <= 0:  # every slot is held: by running calls, or by abandoned threads
                if not self._running and await self._queues_idle():
                    return
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            jobs = await self._claim(free, 0.0)
            if jobs == [] and not self._running:
                if await self._queues_idle():
                    return
                # only delayed jobs, or jobs on their way to a worker, are left: wait for one
                jobs = await self._claim(free, 1.0)
            if jobs is None:
                return  # the worker stops (stop() from another task): it runs nothing more
            for job in jobs:
                self._spawn(job)
            if not jobs and self._running:
                self._slot_freed.clear()
                await self._slot_freed.wait()

    async def _queues_idle(self) -> bool:
        transport, tasks = self.app.transport, self.app.task_names()
        for queue in self._queues():
            stats = await transport.stats(self.app.namespace, queue)
            # jobs of tasks this app lacks are another worker's to run
            counts = [stats.by_task.get(task, {}) for task in tasks] if tasks else [stats.by_state]
            if any(count.get(state, 0) for count in counts for state in ACTIVE_STATES):
                return False
        return True

    # --- running a job ----------------------------------------------------------------------

    def _spawn(self, job: Job) -> None:
        assert job.lease_token is not None
        if job.id in self._running:
            # claimed again while an older attempt still runs here: that one lost its lease
            self._stop(job.id, "lost")
        running = Running(job, job.lease)
        self._running[job.id] = running
        self._executing += 1
        task = asyncio.create_task(self._run_job(running))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_job(self, running: Running) -> None:
        job_id = running.job.id
        placement = self._placement
        assert placement is not None  # made when the worker connects
        try:
            try:
                outcome = await execute(
                    self.app,
                    self.id,
                    running,
                    placement,
                    self._beat_soon,
                    partial(self._progress_soon, running),
                )
            except Exception as exc:
                outcome = worker_error(job_id, "could not be run", exc)
            finally:
                # The slot is free once the call has ended: reporting is not running, and a
                # claim made now overlaps the server's commit of this outcome instead of
                # waiting for its ack (the lease is still held, and renewed, until then). A
                # call abandoned in a thread holds the slot until the thread ends: a job taken
                # meanwhile would wait behind it, leased, while another worker sits idle.
                abandoned = running.execution.abandoned if running.execution else None
                if abandoned is not None and not abandoned.done():
                    abandoned.add_done_callback(self._free_slot)
                else:
                    self._free_slot()
            await self._progress.send_last(running, outcome)
            await self._reporter.report_or_fail(running, outcome)
        finally:
            if self._running.get(job_id) is running:
                del self._running[job_id]
            self._slot_freed.set()

    def _free_slot(self, _: object = None) -> None:
        self._executing -= 1
        self._slot_freed.set()

    def _beat_soon(self) -> None:
        """Renew the leases now; tasks call it from threads."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._heartbeats.beat_now)

    def _progress_soon(self, running: Running, value: float) -> None:
        """Report a job's progress; tasks call it from threads, or from this loop (async
        tasks: at once, so that a value reported just before the task ends is seen by the
        outcome's `send_last`, not queued behind it).
        """
        assert self._loop is not None
        if on_loop(self._loop):
            self._progress.report(running, value)
        else:
            self._loop.call_soon_threadsafe(self._progress.report, running, value)

    def _holds(self, running: Running) -> bool:
        """Whether this worker still holds `running`'s lease (its outcome is not reported)."""
        return self._running.get(running.job.id) is running

    def _detach(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- signals from the service -----------------------------------------------------------

    def _cancel_requested(self, job_id: str) -> None:
        self._stop(job_id, "cancelled")

    def _stop(self, job_id: str, reason: StopReason) -> None:
        running = self._running.get(job_id)
        if running is None:
            return
        if running.execution is not None:
            running.execution.stop(reason)
        elif running.pending is None:
            running.pending = reason


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _nameable(names: tuple[str, ...]) -> tuple[str, ...]:
    """The task names a server takes in a hello: a task named otherwise (with a space, say)
    cannot be enqueued remotely, and naming it made the whole worker fail to connect.
    """
    valid = []
    for name in names:
        with contextlib.suppress(InvalidArgument):
            valid.append(check_name("tasks", name))
    return tuple(valid)
