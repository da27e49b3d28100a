"""`JobHandle`: a job you enqueued, its last known state, and its result when it comes."""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shoal.core.errors import ShoalError
from shoal.core.model import Job, JobState
from shoal.sdk._errors import JobCancelled, ResultTimeout, TaskFailed
from shoal.sdk._loops import on_loop

if TYPE_CHECKING:
    from shoal.sdk._app import App
    from shoal.sdk._tasks import Task

__all__ = ["JobHandle"]

logger = logging.getLogger(__name__)
R = TypeVar("R")

#: A wait without a deadline is cut into long polls of this many seconds.
_POLL = 60.0


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
        """The job once finished, or as it is after `timeout` seconds (None waits forever)."""
        namespace = self._app.namespace
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        while True:
            wait = min(_POLL, max(deadline - time.monotonic(), 0.0))

            async def poll(wait: float = wait) -> Job:
                return await self._app.transport.wait(namespace, self._id, wait)

            job = await self._app.on_home(poll)
            self._job = job
            if job.is_terminal or time.monotonic() >= deadline:
                return job

    async def aresult(self, timeout: float | None = None) -> R:
        """The task's return value once it succeeds, converted to its annotated type.

        Raises:
            TaskFailed: The task failed; carries the remote error's type, message, traceback.
            JobCancelled: The job was cancelled.
            ResultTimeout: It did not finish within `timeout` seconds.
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
