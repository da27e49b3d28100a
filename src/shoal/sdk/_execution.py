"""Running one task call where its pool says: on the event loop, in a thread, or in a process;
with its timeout, and stoppable (cancelled, lease lost, shutting down).

How a stop works depends on where the call runs: an async call is cancelled; a thread cannot
be interrupted, so it is told through `current_job().cancelled` (and abandoned when the job
must end now); a process is told the same way, then terminated after a grace period.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import multiprocessing
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext, SpawnContext
from typing import Any, Literal

from shoal.core.model import JobError
from shoal.sdk._context import JobContext, set_current
from shoal.sdk._process import child_main, error_of, import_path

__all__ = ["Execution", "Outcome", "Pool", "StopReason"]

logger = logging.getLogger(__name__)

Pool = Literal["asyncio", "thread", "process"]
StopReason = Literal["cancelled", "lost", "shutdown", "timeout"]
# A fresh interpreter per task process (never a fork of this threaded one); forkserver makes
# starting one cheap where it exists.
_MP: ForkServerContext | SpawnContext = (
    multiprocessing.get_context("forkserver")
    if "forkserver" in multiprocessing.get_all_start_methods()
    else multiprocessing.get_context("spawn")
)


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


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _run_sync(context: JobContext, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    set_current(context)
    return fn(*args, **kwargs)


class Execution:
    """One call of a task for one job; `run()` once, `stop()` at any time."""

    def __init__(self, call: Call, context: JobContext, flag: Any) -> None:
        self._call = call
        self._context = context
        #: Set to tell the call to stop (`threading.Event` or a multiprocessing one).
        self._flag = flag
        self._stopped: StopReason | None = None
        self._wake = asyncio.Event()
        self._process: Any = None
        self._done: asyncio.Future[Outcome] | None = None

    @staticmethod
    def new_flag(pool: Pool) -> Any:
        """A cancel flag that the call's pool can see."""
        return _MP.Event() if pool == "process" else threading.Event()

    def stop(self, reason: StopReason) -> None:
        """Ask the call to end now. The first reason wins, except that a cancelled thread
        (waited for while it winds down) is abandoned if the job must end now after all.
        """
        if self._stopped is None or (self._stopped == "cancelled" and reason != "cancelled"):
            self._stopped = reason
            self._flag.set()
            self._wake.set()

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
            future = asyncio.ensure_future(self._run_async())
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
            )
        return await self._supervise(future)

    async def _run_async(self) -> Any:
        set_current(self._context)
        return await self._call.fn(*self._call.args, **self._call.kwargs)

    async def _supervise(self, future: asyncio.Future[Any]) -> Outcome:
        loop = asyncio.get_running_loop()
        timeout = self._call.timeout
        timer = loop.call_later(timeout, self.stop, "timeout") if timeout is not None else None
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            while True:
                await asyncio.wait({future, waker}, return_when=asyncio.FIRST_COMPLETED)
                if future.done():
                    return self._finished(future)
                await self._enforce_stop(future)
                if future.done():
                    return self._finished(future)
                if self._stopped != "cancelled" or self._call.pool != "thread":
                    future.add_done_callback(_retrieve)  # abandoned: nobody awaits it
                    return Outcome(stopped=self._stopped)
                # a cancelled thread ends when it notices its flag: keep waiting for it
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
        except asyncio.CancelledError:  # the worker itself is torn down: do not leave the call
            self._flag.set()
            if self._process is not None:
                self._process.terminate()
            future.cancel()
            raise
        finally:
            waker.cancel()
            if timer is not None:
                timer.cancel()

    async def _enforce_stop(self, future: asyncio.Future[Any]) -> None:
        if self._call.pool == "process":
            await self._stop_process(future)
        elif self._call.is_async:
            future.cancel()
            await asyncio.wait({future})

    def _finished(self, future: asyncio.Future[Any]) -> Outcome:
        if self._stopped is not None:
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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        where = import_path(call.fn)
        reader, writer = _MP.Pipe(duplex=False)
        job = (self._context.id, self._context.task, self._context.attempt)
        process = _MP.Process(
            target=child_main,
            args=(writer, where, call.args, call.kwargs, job, self._flag),
            name=f"shoal-job-{self._context.id}",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            reader.close()
            raise
        finally:
            writer.close()  # the child holds the only write end: its exit is our EOF
        self._process = process

        def readable() -> None:
            try:
                while reader.poll():
                    message = reader.recv()
                    if message[0] == "progress":
                        self._context.progress(message[1])
                    elif not future.done():
                        value = Outcome(value=message[1]) if message[0] == "ok" else None
                        value = value or Outcome(error=message[1], retry_delay=message[2])
                        future.set_result(value)
            except (EOFError, OSError):
                loop.remove_reader(reader.fileno())
                reader.close()
                if not future.done():
                    code = process.exitcode
                    died = JobError("ProcessDied", f"the task's process ended (exit code {code})")
                    future.set_result(Outcome(error=died))

        loop.add_reader(reader.fileno(), readable)
        future.add_done_callback(lambda _: loop.run_in_executor(None, process.join))
        return future

    async def _stop_process(self, future: asyncio.Future[Any]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(future), self._call.cancel_grace)
        except TimeoutError:
            logger.info(
                "terminating the process of job %s",
                self._context.id,
                extra={"event": "job.terminated", "job_id": self._context.id},
            )
            self._process.terminate()
            await asyncio.wait({future})
