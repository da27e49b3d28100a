"""Warm task processes: each imports the task modules once and runs many calls, one at a time;
a process that must stop a call (cancelled, timed out) is terminated and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.context import ForkServerContext, SpawnContext
from typing import Any

from shoal.core.model import JobError
from shoal.sdk._process import serve_calls

__all__ = ["ProcessPool", "TaskProcess"]

logger = logging.getLogger(__name__)

# A fresh interpreter per task process (never a fork of this threaded one); forkserver makes
# starting one cheap where it exists.
_MP: ForkServerContext | SpawnContext = (
    multiprocessing.get_context("forkserver")
    if "forkserver" in multiprocessing.get_all_start_methods()
    else multiprocessing.get_context("spawn")
)
#: Seconds a stopping pool gives each idle process to exit before terminating it.
_EXIT_WAIT = 5.0

#: What a call ends with: ("ok", value) or ("error", JobError, retry_delay).
Reply = tuple[Any, ...]


class TaskProcess:
    """One child process and its pipe."""

    def __init__(self) -> None:
        #: Set to ask the running call to stop (`current_job().cancelled` in the child).
        self.flag = _MP.Event()
        self.conn, child = _MP.Pipe()
        self.process = _MP.Process(
            target=serve_calls, args=(child, self.flag), name="shoal-task", daemon=True
        )
        try:
            self.process.start()
        except BaseException:
            self.conn.close()
            raise
        finally:
            child.close()  # the child holds the other end: its exit is our EOF
        self.dead = False

    def call(
        self,
        where: tuple[str, str],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        job: tuple[str, str, int],
        on_progress: Callable[[float], object],
    ) -> asyncio.Future[Reply]:
        """Send one call; the future gets its reply, or a `ProcessDied` error reply."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self.flag.clear()
        try:
            self.conn.send(("run", where, args, kwargs, job))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            error = JobError("InvalidArgument", f"cannot send the arguments: {exc}", "", False)
            future.set_result(("error", error, None))
            return future
        fileno = self.conn.fileno()

        def readable() -> None:
            try:
                while self.conn.poll():
                    reply = self.conn.recv()
                    if reply[0] == "progress":
                        on_progress(reply[1])
                        continue
                    loop.remove_reader(fileno)
                    if not future.done():
                        future.set_result(reply)
                    return
            except (EOFError, OSError):
                loop.remove_reader(fileno)
                self.dead = True
                if not future.done():
                    code = self.process.exitcode
                    died = JobError("ProcessDied", f"the task's process ended (exit code {code})")
                    future.set_result(("error", died, None))
            except Exception as exc:
                # The reply does not unpickle here (a type the parent cannot rebuild): raised
                # out of this callback, it would leave the call waiting for ever. What the pipe
                # holds next cannot be trusted either, so the process goes.
                loop.remove_reader(fileno)
                self.terminate()
                if not future.done():
                    future.set_result(("error", _unreadable(exc), None))

        loop.add_reader(fileno, readable)
        return future

    def terminate(self) -> None:
        """Kill the process now (its call's future gets a `ProcessDied` reply)."""
        self.dead = True
        self.process.terminate()

    async def close(self) -> None:
        """Ask the process to exit, terminate it if it does not, and reap it."""
        if not self.dead:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(("stop",))
        await asyncio.to_thread(self.process.join, _EXIT_WAIT)
        if self.process.is_alive():
            self.process.terminate()
            await asyncio.to_thread(self.process.join)
        self.conn.close()
        self.dead = True


def _unreadable(exc: Exception) -> JobError:
    message = (
        "the task's result or error could not be read back from its process"
        f" ({type(exc).__name__}: {exc})"
    )
    # the same reply would come back on every attempt
    return JobError("UnreadableReply", message, "", retryable=False)


class ProcessPool:
    """Task processes for one worker, started when first needed and reused."""

    def __init__(self) -> None:
        self._idle: list[TaskProcess] = []
        self._all: set[TaskProcess] = set()
        self._reaping: set[asyncio.Future[None]] = set()

    def acquire(self) -> TaskProcess:
        """An idle process, or a new one."""
        while self._idle:
            process = self._idle.pop()
            if not process.dead and process.process.is_alive():
                return process
            self._all.discard(process)
        process = TaskProcess()
        self._all.add(process)
        return process

    def release(self, process: TaskProcess) -> None:
        """A call ended: keep the process for the next, unless it died."""
        if process.dead:
            self._all.discard(process)
            reaping = asyncio.ensure_future(process.close())
            self._reaping.add(reaping)
            reaping.add_done_callback(self._reaping.discard)
        else:
            self._idle.append(process)

    async def close(self) -> None:
        """Stop every process (calls still running in them end)."""
        processes, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(process.close() for process in processes), *self._reaping)
