"""`current_job()`: what a running task can know about its job and tell its worker."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar, Token
from typing import Any, Protocol

from shoal.core.errors import InvalidArgument, ShoalError
from shoal.sdk._errors import JobCancelled

__all__ = ["JobContext", "current_job"]

_current: ContextVar[JobContext | None] = ContextVar("shoal_current_job", default=None)


class Flag(Protocol):
    """A threading or multiprocessing event."""

    def is_set(self) -> bool: ...


class CancelFlag:
    """Set once to tell a call to stop; read from any thread (an attribute read is atomic)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Tell the call to stop."""
        self._set = True

    def is_set(self) -> bool:
        """Whether the call was told to stop."""
        return self._set


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the job's context to every record, copying the caller's `extra` (never changing
    it).
    """

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class JobContext:
    """The running job, as its task sees it (in an event loop, a thread or a process)."""

    def __init__(
        self,
        job_id: str,
        task: str,
        attempt: int,
        cancel_flag: Flag,
        on_heartbeat: Callable[[], object],
        on_progress: Callable[[float], object],
    ) -> None:
        #: The job's id.
        self.id = job_id
        #: The task's name.
        self.task = task
        #: The attempt number, 1 for the first.
        self.attempt = attempt
        self._flag = cancel_flag
        self._on_heartbeat = on_heartbeat
        self._on_progress = on_progress
        self._logger: JobLogger | None = None

    @property
    def logger(self) -> JobLogger:
        """A logger that adds `job_id`, `task` and `attempt` to every record."""
        if self._logger is None:  # made on first use: most jobs never log
            extra = {"job_id": self.id, "task": self.task, "attempt": self.attempt}
            self._logger = JobLogger(logging.getLogger("shoal.task"), extra)
        return self._logger

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or lost its lease: stop soon."""
        return self._flag.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise `JobCancelled` if `cancelled`; a handy check inside loops."""
        if self.cancelled:
            raise JobCancelled(f"job {self.id} was cancelled")

    def heartbeat(self) -> None:
        """Renew the job's lease now (the worker also renews it every few seconds)."""
        self._on_heartbeat()

    def progress(self, value: float) -> None:
        """Record progress, from 0 to 1 (clamped); shown on the job. `InvalidArgument` for
        NaN, which no clamp turns into a number.
        """
        number = float(value)
        if math.isnan(number):
            raise InvalidArgument("progress", "must be a number from 0 to 1")
        self._on_progress(min(max(number, 0.0), 1.0))

    def __repr__(self) -> str:
        return f"<JobContext {self.id} task={self.task} attempt={self.attempt}>"


def current_job() -> JobContext:
    """The job the calling task runs for; `ShoalError` outside a task."""
    context = _current.get()
    if context is None:
        raise ShoalError("current_job() is only available inside a running task")
    return context


def set_current(context: JobContext | None) -> Token[JobContext | None]:
    """Make `context` the current job of this thread or task context; the token undoes it."""
    return _current.set(context)


def reset_current(token: Token[JobContext | None]) -> None:
    """Undo a `set_current` (an async call run in its worker's own task)."""
    _current.reset(token)
