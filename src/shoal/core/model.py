"""The job model: jobs, their states, leases, errors and the records the store keeps.

Times are POSIX seconds as floats everywhere (the clock's unit), which every store can hold
exactly enough (microseconds) and which costs nothing to compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

from shoal.core._records import fast_init

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_NAMESPACE",
    "DEFAULT_QUEUE",
    "TERMINAL_STATES",
    "WAITING_STATES",
    "Job",
    "JobError",
    "JobId",
    "JobPage",
    "JobQuery",
    "JobState",
    "LeaseRef",
    "QueueInfo",
    "QueueStats",
    "WorkerInfo",
    "WorkerState",
]

#: The namespace every object belongs to unless another is named.
DEFAULT_NAMESPACE = "default"
#: The queue a job goes to unless another is named.
DEFAULT_QUEUE = "default"

JobId = NewType("JobId", str)


class JobState(StrEnum):
    """Where a job is in its life; the allowed moves are in `shoal.core.transitions`."""

    #: Waits for `run_at`: a delay, or a retry's backoff.
    SCHEDULED = "scheduled"
    #: Ready to be claimed.
    QUEUED = "queued"
    #: Leased to one worker.
    RUNNING = "running"
    #: Done; the result is kept until retention removes the job.
    SUCCEEDED = "succeeded"
    #: Attempts exhausted or not retryable: the dead-letter view.
    FAILED = "failed"
    #: Cancelled before or while running.
    CANCELLED = "cancelled"


#: States a job never leaves on its own (only `retry` or `delete` move it).
TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
#: States of a job that waits to be claimed.
WAITING_STATES = frozenset({JobState.SCHEDULED, JobState.QUEUED})
#: States of a job that is not finished.
ACTIVE_STATES = frozenset({JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING})


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job attempt failed, as the worker reported it."""

    type: str
    message: str
    traceback: str = ""
    #: False when retrying cannot help (bad arguments, unknown task).
    retryable: bool = True


@fast_init
@dataclass(frozen=True, slots=True)
class Job:
    """A unit of work and everything shoal knows about it."""

    id: JobId
    namespace: str
    queue: str
    task: str
    payload: bytes
    state: JobState
    created_at: float
    run_at: float
    content_type: str = "application/json"
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 1
    #: Name of the retry policy (`fixed`, `exponential`) with its parameters; see `retry.py`.
    backoff: str = ""
    timeout: float | None = None
    idempotency_key: str | None = None
    tags: tuple[str, ...] = ()
    result: bytes | None = None
    error: JobError | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    progress: float | None = None
    parent_id: str | None = None
    schedule_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job is finished (succeeded, failed or cancelled)."""
        return self.state in TERMINAL_STATES

    @property
    def lease(self) -> LeaseRef:
        """The claim a leased job came with (its token empty when the job holds none)."""
        return LeaseRef(self.id, self.lease_token or "")


@dataclass(frozen=True, slots=True)
class LeaseRef:
    """A claim on a running job: the job and the token its claim received."""

    job_id: str
    token: str


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters and a keyset page over jobs, newest first."""

    namespace: str = DEFAULT_NAMESPACE
    queue: str | None = None
    state: JobState | None = None
    task: str | None = None
    tag: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    #: The `next_cursor` of the previous page (the id of its last job): list the jobs older
    #: than it.
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing; `next_cursor` is None on the last page."""

    jobs: tuple[Job, ...]
    next_cursor: str | None

    def cut(self, count: int) -> JobPage:
        """The page's first `count` jobs (at least one), the next page going on after the last
        of them: for a page that must travel in less room than its `limit` gave it.
        """
        if count >= len(self.jobs):
            return self
        return JobPage(self.jobs[:count], self.jobs[count - 1].id)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Job counts of a queue (or a namespace), by state and by task then state."""

    by_state: Mapping[JobState, int]
    by_task: Mapping[str, Mapping[JobState, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All jobs counted."""
        return sum(self.by_state.values())


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as listed: its name, whether it is paused, and its counts by state."""

    namespace: str
    name: str
    paused: bool
    counts: Mapping[JobState, int]


class WorkerState(StrEnum):
    """What a connected worker is doing."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker session: the cluster membership record."""

    id: str
    namespace: str
    queues: tuple[str, ...]
    connected_at: float
    last_heartbeat: float
    state: WorkerState = WorkerState.IDLE
    tasks: tuple[str, ...] = ()
    concurrency: int = 1
    language: str = "python"
    host: str = ""
    pid: int = 0
    running: int = 0
