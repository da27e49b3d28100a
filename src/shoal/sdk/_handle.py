"""`JobHandle`: a job you enqueued, its last known state, and its result when it comes."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shoal.core.errors import ShoalError, Unavailable
from shoal.core.model import Job, JobState
from shoal.sdk._errors import JobCancelled, ResultTimeout, TaskFailed
from shoal.sdk._loops import on_loop

if TYPE_CHECKING:
    from shoal.sdk._app import App
    from shoal.sdk._tasks import Task
    from shoal.sdk._transport import Transport

__all__ = ["JobHandle"]

logger = logging.getLogger(__name__)
R = TypeVar("R")

#: A wait without a deadline is cut into long polls of this many seconds.
_POLL = 60.0
#: After a lost connection a wait asks again after this pause, doubled per failure up to the
#: maximum: a restarting server is back within about a second, and a down one is not hammered.
_RETRY_FIRST = 0.1
_RETRY_MAX = 1.0


class JobHandle(Generic[R]):
    """A job and its typed result. `state`, `progress` and `job` are as last seen; call
    `refresh()` (or wait with `result()`) to see them change.
    """

    def __init__(
        self,
        app: App,
        job_id: str,
        task: Task[Any, R] | None = None,
        *,
        job: Job | None = None,
        created: bool = True,
    ) -> None:
        self._app = app
        self._id = job_id
        self._task = task
        self._job = job
        #: False when an idempotency key returned an existing job instead of a new one.
        self.created = created

    @property
    def id(self) -> str:
        """The job's id."""
        return self._id

    @property
    def job(self) -> Job:
        """The job as last seen."""
        if self._job is None:
            raise ShoalError("the job was not loaded yet; call refresh()")
        return self._job

    @property
    def state(self) -> JobState:
        """The state as last seen."""
        return self.job.state

    @property
    def progress(self) -> float | None:
        """The progress (0 to 1) as last seen."""
        return self.job.progress

    def __repr__(self) -> str:
        state = self._job.state.value if self._job is not None else "?"
        return f"<JobHandle {self._id} {state}>"

    # --- reading ----------------------------------------------------------------------------

    async def arefresh(self) -> JobHandle[R]:
        """Load the job's current state."""
        namespace = self._app.namespace
        self._job = await self._app.on_home(lambda: self._app.transport.get(namespace, self._id))
        return self

    def refresh(self) -> JobHandle[R]:
        """Blocking `arefresh()`."""
        return self._app.run_sync(self.arefresh)

    async def await_finished(self, timeout: float | None = None) -> Job:
        """The job once finished, or as it is after `timeout` seconds (None waits forever).

        A dropped connection (`Unavailable`, as while a server restarts) is waited out until
        the deadline: waiting only reads, so it is safe to ask again. `Unavailable` if the
        service is still unreachable at the deadline, or once the app closes.
        """
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        pause = _RETRY_FIRST
        used: list[Transport] = []  # the transport of the last poll, to tell a closed app
        while True:
            wait = min(_POLL, max(deadline - time.monotonic(), 0.0))
            try:
                job = await self._app.on_home(functools.partial(self._poll, wait, used))
            except Unavailable:
                left = deadline - time.monotonic()
                if left <= 0 or not used or not self._app.holds(used[0]):
                    raise  # out of time, or the app closed: asking again would reopen it
                logger.debug(
                    "waiting for a job again after a lost connection",
                    extra={"event": "job.wait_retried", "job_id": self._id, "pause": pause},
                )
                await asyncio.sleep(min(pause, left))
                if not self._app.holds(used[0]):
                    raise
                pause = min(pause * 2, _RETRY_MAX)
                continue
            pause = _RETRY_FIRST
            self._job = job
            if job.is_terminal or time.monotonic() >= deadline:
                return job

    async def _poll(self, wait: float, used: list[Transport]) -> Job:
        """One long poll, on the home loop; `used` is left holding the transport it asked."""
        used[:] = [self._app.transport]
        return await used[0].wait(self._app.namespace, self._id, wait)

    async def aresult(self, timeout: float | None = None) -> R:
        """The task's return value once it succeeds, converted to its annotated type.

        Raises:
            TaskFailed: The task failed; carries the remote error's type, message, traceback.
            JobCancelled: The job was cancelled.
            ResultTimeout: It did not finish within `timeout` seconds.
            Unavailable: The service was still unreachable at the deadline (see
                `await_finished`).
        """
        return self._outcome(await self.await_finished(timeout))

    def result(self, timeout: float | None = None) -> R:
        """Blocking `aresult()`."""
        return self._app.run_sync(lambda: self.aresult(timeout))

    def _outcome(self, job: Job) -> R:
        if job.state is JobState.SUCCEEDED:
            serializer = self._app.serializer_for(job.content_type)
            if self._task is None:
                value: Any = None if job.result is None else serializer.loads(job.result)
                return value  # type: ignore[no-any-return]
            return self._task.signature.decode_result(job.result, serializer)  # type: ignore[no-any-return]
        if job.state is JobState.FAILED:
            raise TaskFailed.from_job_error(job.error)
        if job.state is JobState.CANCELLED:
            raise JobCancelled(f"job {job.id} was cancelled")
        raise ResultTimeout(f"job {job.id} is still {job.state.value}")

    # --- steering ---------------------------------------------------------------------------

    async def acancel(self) -> JobHandle[R]:
        """Cancel the job: at once if it waits, by stopping it on its worker if it runs."""
        namespace = self._app.namespace
        self._job = await self._app.on_home(lambda: self._app.transport.cancel(namespace, self._id))
        return self

    def cancel(self) -> JobHandle[R]:
        """Blocking `acancel()`."""
        return self._app.run_sync(self.acancel)

    # --- callbacks --------------------------------------------------------------------------

    def on_success(self, callback: Callable[[R], object]) -> JobHandle[R]:
        """Call `callback(result)` when the job succeeds (on the app's loop; a coroutine
        function is awaited). A failing callback is logged at ERROR and does not stop others.
        """
        self._spawn(self._notify(success=callback))
        return self

    def on_failure(self, callback: Callable[[ShoalError], object]) -> JobHandle[R]:
        """Call `callback(error)` when the job fails or is cancelled (`TaskFailed`,
        `JobCancelled`).
        """
        self._spawn(self._notify(failure=callback))
        return self

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if on_loop(self._app.home):
            self._app.watch(coro)
            return

        async def start() -> None:
            self._app.watch(coro)

        self._app.run_sync(start)

    async def _notify(
        self,
        success: Callable[[R], object] | None = None,
        failure: Callable[[ShoalError], object] | None = None,
    ) -> None:
        try:
            value = await self.aresult()
        except (TaskFailed, JobCancelled) as error:
            if failure is not None:
                await _invoke(failure, error)
            return
        except Exception:
            # a watched task's error would go unretrieved; the outcome is unknown, so neither
            # callback runs, and the log says why
            logger.exception(
                "job callback not called: the job's outcome could not be read",
                extra={"event": "job.callback_lost", "job_id": self._id},
            )
            return
        if success is not None:
            await _invoke(success, value)


async def _invoke(callback: Callable[[Any], object], value: object) -> None:
    try:
        outcome = callback(value)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        logger.exception(
            "job callback failed", extra={"event": "job.callback_failed", "callback": callback}
        )
