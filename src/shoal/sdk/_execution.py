"""Running one task call where its pool says: on the event loop, in a thread, or in a process;
with its timeout, and stoppable (cancelled, lease lost, shutting down).

How a stop works depends on where the call runs: an async call is cancelled; a thread cannot
be interrupted, so it is told through `current_job().cancelled` (and abandoned when the job
must end now); a process is told the same way, then terminated after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import pickle
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from shoal.core.model import JobError
from shoal.sdk._context import JobContext, reset_current, set_current
from shoal.sdk._process import error_of, import_path
from shoal.sdk._procpool import ProcessPool, Reply, TaskProcess

__all__ = ["Execution", "Outcome", "Pool", "StopReason"]

logger = logging.getLogger(__name__)

Pool = Literal["asyncio", "thread", "process"]
StopReason = Literal["cancelled", "lost", "shutdown", "timeout"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended: a value, an error, or a stop (then `value` and `error` are unset)."""

    value: Any = None
    error: JobError | None = None
    retry_delay: float | None = None
    stopped: StopReason | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """What to run and how."""

    fn: Callable[..., Any]
    is_async: bool
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float | None
    pool: Pool
    #: Thread pool for sync calls; None is the loop's default executor.
    executor: Executor | None
    #: Seconds a process may take to stop by itself before it is terminated.
    cancel_grace: float
    #: The worker's task processes, for the process pool.
    processes: ProcessPool | None = None


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _NotStarted(Exception):
    """The call was stopped while it waited for a pool thread: it never started."""


def _run_sync(
    context: JobContext,
    fn: Callable[..., Any],
    args: Any,
    kwargs: Any,
    flag: Any,
    started: Callable[[], object] | None,
) -> Any:
    # A pool thread may still run a call abandoned after its timeout: the next call waits
    # for one, and neither its timeout nor a stop meanwhile may let it start late.
    if flag.is_set():
        raise _NotStarted
    if started is not None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown): no clock
            started()
    set_current(context)
    return fn(*args, **kwargs)


class Execution:
    """One call of a task for one job; `run()` once, `stop()` at any time."""

    def __init__(self, call: Call, context: JobContext, flag: Any) -> None:
        self._call = call
        self._context = context
        #: Set to tell the call to stop (`current_job().cancelled`).
        self._flag = flag
        self._stopped: StopReason | None = None
        #: Resolved when the call ends or a stop is asked for (a future, not an Event plus a
        #: waiting task: this is paid once per job).
        self._wake: asyncio.Future[None] | None = None
        self._process: TaskProcess | None = None
        #: The task running an async call in place while it runs (a stop cancels it).
        self._inline: asyncio.Task[Any] | None = None
        self._cancelled_inline = False
        #: The timeout's timer: set when the call starts (a thread call: when a pool thread
        #: takes it up, not when it is queued for one); None once the execution is over.
        self._timer: asyncio.TimerHandle | None = None
        self._over = False
        #: A thread or process call given up on (its job ended on a stop) that still runs:
        #: it holds its pool's thread or process until it ends.
        self.abandoned: asyncio.Future[Any] | None = None

    def stop(self, reason: StopReason) -> None:
        """Ask the call to end now. The first reason wins, except that a cancelled thread
        (waited for while it winds down) is abandoned if the job must end now after all.
        """
        if self._stopped is None or (self._stopped == "cancelled" and reason != "cancelled"):
            self._stopped = reason
            self._flag.set()
            if self._process is not None:
                self._process.flag.set()
            if self._inline is not None and not self._cancelled_inline:
                self._cancelled_inline = True
                self._inline.cancel()
            self._signal()

    def _signal(self, _: object = None) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def run(self) -> Outcome:
        """Run the call to its end (or its stop) and say how it ended."""
        call = self._call
        if call.pool == "process":
            try:
                future = self._start_process()
            except (OSError, RuntimeError, pickle.PicklingError, AttributeError) as exc:
                # e.g. a script without `if __name__ == "__main__":` (children re-import it)
                message = f"cannot start a process for the task: {exc}"
                return Outcome(error=JobError("ProcessStartError", message, retryable=False))
        elif call.is_async:
            return await self._run_inline()
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            future = loop.run_in_executor(
                call.executor,
                context.run,
                _run_sync,
                self._context,
                call.fn,
                call.args,
                call.kwargs,
                self._flag,
                self._clock_starter(loop),
            )
            return await self._supervise(future)
        self._start_clock()  # a process: its start counts
        return await self._supervise(future)

    def _clock_starter(self, loop: asyncio.AbstractEventLoop) -> Callable[[], object] | None:
        """What a pool thread calls as it takes the call up: a wake-up of the loop, paid only
        by a call with a timeout.
        """
        if self._call.timeout is None:
            return None
        return partial(loop.call_soon_threadsafe, self._start_clock)

    def _start_clock(self) -> None:
        timeout = self._call.timeout
        if timeout is not None and self._timer is None and not self._over:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(timeout, self.stop, "timeout")

    async def _run_inline(self) -> Outcome:
        # An async call runs in the caller's task rather than in a task of its own: no task,
        # no context copy and no supervising wait per job. A stop cancels this task while the
        # call runs; that cancellation is ours to take back (`uncancel`), any other is not.
        if self._stopped is not None:
            return Outcome(stopped=self._stopped)
        call, task = self._call, asyncio.current_task()
        assert task is not None
        timer = None
        if call.timeout is not None:
            timer = asyncio.get_running_loop().call_later(call.timeout, self.stop, "timeout")
        token = set_current(self._context)
        self._inline = task
        try:
            value = await call.fn(*call.args, **call.kwargs)
        except asyncio.CancelledError:
            if not self._took_back(task):
                self._flag.set()  # the worker itself is torn down: do not leave the call
                raise
            return Outcome(stopped=self._stopped or "shutdown")
        except BaseException as exc:  # SystemExit too (argparse, click): not the worker's exit
            if self._took_back(task) or self._stopped is not None:
                return Outcome(stopped=self._stopped)  # how it ended after a stop is no outcome
            job_error, delay = error_of(exc)
            return Outcome(error=job_error, retry_delay=delay)
        finally:
            self._inline = None
            reset_current(token)
            if timer is not None:
                timer.cancel()
        if self._took_back(task) or self._stopped is not None:
            return Outcome(stopped=self._stopped)
        return Outcome(value=value)

    def _took_back(self, task: asyncio.Task[Any]) -> bool:
        """Whether our own cancellation was asked for; True only if no other one was."""
        if not self._cancelled_inline:
            return False
        self._cancelled_inline = False
        return task.uncancel() == 0

    async def _supervise(self, future: asyncio.Future[Any]) -> Outcome:
        loop = asyncio.get_running_loop()
        future.add_done_callback(self._signal)
        acted: StopReason | None = None  # the stop last enforced
        try:
            while True:
                self._wake = loop.create_future()
                if future.done() or self._stopped != acted:
                    self._wake.set_result(None)
                await self._wake
                if future.done():
                    return self._finished(future)
                acted = self._stopped
                await self._enforce_stop(future)
                if future.done():
                    return self._finished(future)
                if acted != "cancelled" or self._call.pool != "thread":
                    future.add_done_callback(_retrieve)  # abandoned: nobody awaits it
                    self.abandoned = future
                    return Outcome(stopped=acted)
                # a cancelled thread ends when it notices its flag: keep waiting for it
        except asyncio.CancelledError:  # the worker itself is torn down: do not leave the call
            self._flag.set()
            if self._process is not None:
                self._process.terminate()
            future.cancel()
            raise
        finally:
            self._wake = None
            self._over = True
            if self._timer is not None:
                self._timer.cancel()

    async def _enforce_stop(self, future: asyncio.Future[Any]) -> None:
        if self._call.pool == "process":
            await self._stop_process(future)

    def _finished(self, future: asyncio.Future[Any]) -> Outcome:
        if self._stopped is not None:
            _retrieve(future)  # how the call itself ended (often JobCancelled) is not the outcome
            return Outcome(stopped=self._stopped)
        if future.cancelled():
            return Outcome(stopped="shutdown")
        error = future.exception()
        if error is None:
            result = future.result()
            if isinstance(result, Outcome):  # from a process
                return result
            return Outcome(value=result)
        job_error, delay = error_of(error)
        return Outcome(error=job_error, retry_delay=delay)

    # --- processes --------------------------------------------------------------------------

    def _start_process(self) -> asyncio.Future[Any]:
        call = self._call
        assert call.processes is not None
        where = import_path(call.fn)
        process = call.processes.acquire()
        self._process = process
        if self._stopped is not None:
            process.flag.set()
        job = (self._context.id, self._context.task, self._context.attempt)
        try:
            replied = process.call(where, call.args, call.kwargs, job, self._context.progress)
        except BaseException:
            process.terminate()
            call.processes.release(process)
            raise

        def to_outcome(reply: asyncio.Future[Reply]) -> Outcome:
            call.processes.release(process)  # type: ignore[union-attr]
            kind, *rest = reply.result()
            if kind == "ok":
                return Outcome(value=rest[0])
            return Outcome(error=rest[0], retry_delay=rest[1])

        outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        replied.add_done_callback(lambda reply: outcome.set_result(to_outcome(reply)))
        return outcome

    async def _stop_process(self, future: asyncio.Future[Any]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(future), self._call.cancel_grace)
        except TimeoutError:
            logger.info(
                "terminating the process of job %s",
                self._context.id,
                extra={"event": "job.terminated", "job_id": self._context.id},
            )
            assert self._process is not None
            self._process.terminate()
            await asyncio.wait({future})
