"""The SDK's exceptions, all under `ShoalError`.

`TaskFailed`, `JobCancelled` and `ResultTimeout` are what waiting on a result can raise;
`Retry` and `NonRetryable` are what a task raises to steer its own retries.
"""

from __future__ import annotations

from shoal.core.errors import InvalidArgument, ShoalError
from shoal.core.model import JobError
from shoal.core.retry import MAX_RETRY_DELAY

__all__ = ["JobCancelled", "NonRetryable", "ResultTimeout", "Retry", "TaskFailed"]


class TaskFailed(ShoalError):
    """The task raised an error on the worker (its last attempt failed)."""

    code = "task_failed"

    def __init__(self, type: str, message: str, traceback: str = "") -> None:
        #: The remote exception's class name (`ValueError`, `UnknownTask`, ...).
        self.type = type
        #: The remote exception's message.
        self.remote_message = message
        #: The remote traceback, as text.
        self.traceback = traceback
        super().__init__(f"{type}: {message}" if message else type)

    @classmethod
    def from_job_error(cls, error: JobError | None) -> TaskFailed:
        """The exception for a job's recorded error."""
        if error is None:
            return cls("Unknown", "the job failed without an error record")
        return cls(error.type, error.message, error.traceback)


class JobCancelled(ShoalError):
    """The job was cancelled before it produced a result."""

    code = "cancelled"


class ResultTimeout(ShoalError, TimeoutError):
    """The job did not finish within the time given to wait for it."""

    code = "deadline_exceeded"


class Retry(ShoalError):
    """Raised by a task to ask for another attempt, after `delay` seconds if given.

    The attempt counts; when the job has no attempts left it fails. `delay` is from 0 to 1e9
    seconds (`InvalidArgument` otherwise: the service would refuse it).
    """

    code = "retry"

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        if delay is not None and not _is_retry_delay(delay):
            raise InvalidArgument("delay", f"must be from 0 to {MAX_RETRY_DELAY:g} seconds")
        self.delay = delay
        super().__init__(reason)


def _is_retry_delay(delay: object) -> bool:
    # not a bool (an int to Python, a mistake here); NaN fails the comparisons
    return (
        isinstance(delay, int | float)
        and not isinstance(delay, bool)
        and 0 <= delay <= MAX_RETRY_DELAY
    )


class NonRetryable(ShoalError):
    """Raised (or subclassed) by a task to fail the job at once, whatever attempts remain."""

    code = "non_retryable"
