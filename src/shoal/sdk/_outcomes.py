"""One job's way in and out of a worker: its task and typed arguments before it runs, and the
report of how it ended (complete, fail, give back, or nothing once its lease is lost); and the
settings a worker runs jobs with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shoal.core.errors import InvalidArgument, LeaseLost, ShoalError
from shoal.core.model import Job, JobError, LeaseRef
from shoal.sdk._context import CancelFlag, JobContext
from shoal.sdk._execution import Call, Execution, Outcome, Pool, StopReason
from shoal.sdk._procpool import ProcessPool
from shoal.sdk._transport import LOOKAHEAD, MAX_ERROR_BYTES, WorkerSession

if TYPE_CHECKING:
    from shoal.sdk._app import App
    from shoal.sdk._tasks import Task

__all__ = ["Placement", "Running", "WorkerConfig", "execute", "fit_error", "prepare", "report"]

logger = logging.getLogger(__name__)

#: The last stretch of a hold yields to the loop rather than sleeping on a timer: loop timers
#: fire up to a millisecond late (uvloop counts whole milliseconds).
_SPIN = 0.002
#: A held job looks this often whether it was asked to stop.
_STOP_CHECK = 0.01
#: What replaces the middle of an error text cut to fit in a message.
_CUT = "\n[... {} bytes cut: the error did not fit in one message ...]\n"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The arguments of a `Worker`, as one value (for `App(worker=...)` in local mode)."""

    queues: tuple[str, ...] | None = None
    concurrency: int = 4
    pool: Pool = "thread"
    shutdown_grace: float = 30.0
    cancel_grace: float = 2.0


@dataclass(slots=True)
class Running:
    """A job this worker holds a lease on."""

    job: Job
    lease: LeaseRef
    execution: Execution | None = None
    #: A stop asked for before the execution existed.
    pending: StopReason | None = None
    #: The latest progress the task reported that is not sent yet, and whether a sender runs.
    progress: float | None = None
    reporting: bool = False


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a worker runs its calls."""

    pool: Pool
    #: The thread pool for sync calls; None is the loop's default executor.
    executor: Executor | None
    cancel_grace: float
    #: The worker's task processes, for the process pool.
    processes: ProcessPool | None = None


def prepare(
    app: App, job: Job, worker_id: str
) -> Outcome | tuple[Task[Any, Any], tuple[Any, ...], dict[str, Any]]:
    """The job's task and typed arguments, or the non-retryable failure that ends it (an
    unknown task, arguments that do not fit).
    """
    task = app.find_task(job.task)
    if task is None:
        message = f"no task named {job.task!r} is registered on worker {worker_id}"
        return Outcome(error=JobError("UnknownTask", message, retryable=False))
    try:
        args, kwargs = task.signature.decode(job.payload, app.serializer_for(job.content_type))
    except ShoalError as exc:
        message = f"task {job.task}: {exc.message}"
        return Outcome(error=JobError(type(exc).__name__, message, retryable=False))
    return task, args, kwargs


async def execute(
    app: App,
    worker_id: str,
    running: Running,
    placement: Placement,
    beat: Callable[[], object],
    progress: Callable[[float], object],
) -> Outcome:
    """Run the job's task where `placement` says; `beat` and `progress` are thread-safe."""
    job = running.job
    prepared = prepare(app, job, worker_id)
    if isinstance(prepared, Outcome):
        return prepared
    task, args, kwargs = prepared
    # A thread only reads the flag (`current_job().cancelled`): a plain flag will do, and
    # costs far less per job than a threading.Event.
    flag = CancelFlag()
    context = JobContext(job.id, job.task, job.attempt, flag, beat, progress)
    call = Call(
        fn=task.fn,
        is_async=task.is_async,
        args=args,
        kwargs=kwargs,
        timeout=job.timeout,
        pool=task.pool or placement.pool,
        executor=placement.executor,
        cancel_grace=placement.cancel_grace,
        processes=placement.processes,
    )
    ahead = job.run_at - (job.started_at or job.run_at)  # both read on the server's clock
    if ahead > 0:  # leased before its run_at (the claim's lookahead): start at the run_at
        await _hold_until(job.run_at, min(ahead, LOOKAHEAD), running)
        if running.pending is not None:
            return Outcome(stopped=running.pending)  # stopped while held: never started
    running.execution = Execution(call, context, flag)
    if running.pending is not None:
        running.execution.stop(running.pending)
    logger.debug("job %s started", job.id, extra={"event": "job.started", "job_id": job.id})
    try:
        return await running.execution.run()
    except ShoalError as exc:  # could not even start (a local function in a process pool)
        return Outcome(error=JobError(type(exc).__name__, exc.message, retryable=False))


async def _hold_until(run_at: float, longest: float, running: Running) -> None:
    """Return at `run_at` on this machine's clock, or once a stop is asked for.

    The wait is at most `longest` (how far ahead of its run_at the server leased the job), so
    a clock behind the server's delays a job by no more than that, and a job that was due when
    it was leased is never held. It is measured on the monotonic clock, which a step of the
    wall clock cannot stretch.
    """
    end = time.perf_counter() + min(run_at - time.time(), longest)
    while running.pending is None and (remaining := end - time.perf_counter()) > 0:
        await asyncio.sleep(min(remaining - _SPIN, _STOP_CHECK) if remaining > _SPIN else 0)
    # The two clocks drift apart by microseconds over the hold: finish on the wall clock, so
    # the job never starts before its run_at, for at most a millisecond more.
    while running.pending is None and time.time() < run_at and time.perf_counter() < end + 1e-3:
        await asyncio.sleep(0)


async def report(app: App, session: WorkerSession, running: Running, outcome: Outcome) -> None:
    """Tell the service how the job ended; a lease lost meanwhile is logged, not raised. An
    outcome the service refuses as invalid (a retry delay out of range) fails the job instead:
    dropped, it would leave the job running until its lease expired.
    """
    lease, job = running.lease, running.job
    extra = {"job_id": job.id, "queue": job.queue, "task": job.task, "attempt": job.attempt}
    try:
        try:
            await _send(app, session, running, outcome)
        except InvalidArgument as exc:
            message = f"task {job.task}: the service refused the outcome: {exc.message}"
            error = JobError("InvalidArgument", message, retryable=False)
            await session.fail(lease, error, None)
            outcome = Outcome(error=error)
        _log_outcome(running, outcome, extra)
    except LeaseLost:
        logger.warning(
            "job %s: its lease was lost before the outcome was reported",
            lease.job_id,
            extra={"event": "job.lease_lost", **extra},
        )


async def _send(app: App, session: WorkerSession, running: Running, outcome: Outcome) -> None:
    lease, job = running.lease, running.job
    if outcome.stopped == "shutdown":
        await session.release([lease])
    elif outcome.stopped == "cancelled":
        error = JobError("Cancelled", "cancelled while running", retryable=False)
        await session.fail(lease, error, None)
    elif outcome.stopped == "timeout":
        message = f"did not finish within {job.timeout:g} seconds"
        await session.fail(lease, JobError("Timeout", message), None)
    elif outcome.error is not None:
        room = None if session.max_outcome_bytes is None else MAX_ERROR_BYTES
        await session.fail(lease, fit_error(outcome.error, room), outcome.retry_delay)
    elif outcome.stopped is None:
        await _complete(app, session, running, outcome.value)


def _log_outcome(running: Running, outcome: Outcome, extra: dict[str, object]) -> None:
    job = running.job
    if outcome.stopped == "lost":
        logger.warning("lost the lease of job %s", job.id, extra={"event": "job.lost", **extra})
    elif outcome.stopped is None and outcome.error is None:
        logger.debug("job %s succeeded", job.id, extra={"event": "job.succeeded", **extra})
    else:
        kind = outcome.stopped or (outcome.error.type if outcome.error else "?")
        logger.info(
            "job %s ended: %s",
            job.id,
            kind,
            extra={"event": "job.attempt_failed", "reason": kind, **extra},
        )


async def _complete(app: App, session: WorkerSession, running: Running, value: object) -> None:
    job = running.job
    task = app.find_task(job.task)
    assert task is not None
    try:
        data = task.signature.encode_result(value, app.serializer_for(job.content_type))
    except ShoalError as exc:
        error = JobError("InvalidArgument", f"task {job.task}: {exc.message}", retryable=False)
        await session.fail(running.lease, error, None)
        return
    limit = session.max_outcome_bytes
    if limit is not None:
        limit = max(limit - len(job.payload), 0)
    if data is not None and limit is not None and len(data) > limit:
        # sent, it would end the worker's stream, and every later session it was sent on
        message = (
            f"task {job.task}: the result is {len(data)} bytes encoded; the most a result may"
            f" be is {limit} bytes (to fit, with its job, in the server's message limit)"
        )
        await session.fail(
            running.lease, JobError("ResultTooLarge", message, retryable=False), None
        )
        return
    await session.complete(running.lease, data)


def fit_error(error: JobError, limit: int | None) -> JobError:
    """`error`, its texts cut to fit in `limit` bytes: a failure must reach the service even
    when its message or traceback is huge. The message keeps up to a quarter of the room, the
    traceback the rest; each keeps its beginning and its end (where the exception is).
    """
    if limit is None or 4 * (len(error.message) + len(error.traceback)) <= limit:
        return error  # fits whatever the characters (at most 4 bytes each in UTF-8)
    message = _cut(error.message, limit // 4)
    room = limit - len(error.type.encode()) - len(message.encode())
    return replace(error, message=message, traceback=_cut(error.traceback, room))


def _cut(text: str, room: int) -> str:
    """`text` in at most `room` bytes of UTF-8: its head and tail around a note of the cut."""
    data = text.encode(errors="replace")
    if len(data) <= room:
        return text
    keep = max(room - len(_CUT.format(len(data))), 0) // 2
    note = _CUT.format(len(data) - 2 * keep)
    head = data[:keep].decode(errors="ignore")
    tail = data[len(data) - keep :].decode(errors="ignore")
    return f"{head}{note}{tail}"
