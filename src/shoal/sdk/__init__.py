"""The Python SDK: declare tasks, enqueue them, wait for typed results, run workers.

    from shoal.sdk import App

    app = App("sqlite:///shoal.db")

    @app.task(retries=3)
    def add(a: int, b: int) -> int:
        return a + b

    handle = add.enqueue(1, 2)
    assert handle.result(timeout=10) == 3

`memory://` and `sqlite:///file` run the service and a worker in this process (local mode);
`grpc://host:port` reaches a server with the same API (distributed mode). Nothing connects at
import or in a constructor: only on first use, `await app.start()`, `async with app:` or
`with app:`.
"""

from __future__ import annotations

from shoal.core.errors import ShoalError
from shoal.core.events import Event
from shoal.core.model import JobState
from shoal.core.retry import RetryPolicy
from shoal.core.schedules import ScheduleView
from shoal.sdk._admin import Admin
from shoal.sdk._app import App
from shoal.sdk._context import JobContext, current_job
from shoal.sdk._credentials import Credentials
from shoal.sdk._errors import JobCancelled, NonRetryable, ResultTimeout, Retry, TaskFailed
from shoal.sdk._execution import Pool
from shoal.sdk._grpc import GrpcTransport
from shoal.sdk._handle import JobHandle
from shoal.sdk._local import LocalTransport
from shoal.sdk._schedules import ScheduleOptions, Schedules
from shoal.sdk._serde import JsonSerializer, PickleSerializer, Serializer
from shoal.sdk._tasks import Task, TaskCall, TaskOptions, TaskRegistry, TaskVariant
from shoal.sdk._transport import Transport, WorkerSession
from shoal.sdk._worker import Worker, WorkerConfig

__all__ = [
    "Admin",
    "App",
    "Credentials",
    "Event",
    "GrpcTransport",
    "JobCancelled",
    "JobContext",
    "JobHandle",
    "JobState",
    "JsonSerializer",
    "LocalTransport",
    "NonRetryable",
    "PickleSerializer",
    "Pool",
    "ResultTimeout",
    "Retry",
    "RetryPolicy",
    "ScheduleOptions",
    "ScheduleView",
    "Schedules",
    "Serializer",
    "ShoalError",
    "Task",
    "TaskCall",
    "TaskFailed",
    "TaskOptions",
    "TaskRegistry",
    "TaskVariant",
    "Transport",
    "Worker",
    "WorkerConfig",
    "WorkerSession",
    "current_job",
]
