from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from shoal.core.ids import new_job_id
from shoal.core.model import Job, JobState
from shoal.core.ports import Store

#: Builds a fresh, empty store; entering the context opens it, leaving closes it.
StoreFactory = Callable[[], AbstractAsyncContextManager[Store]]

#: The time the contract's tests start at; stores never read a clock, so any value works.
T0 = 1_700_000_000.0


def make_job(**fields: Any) -> Job:
    """A queued job in `default/default` created at `T0`, with any field overridden."""
    values: dict[str, Any] = {
        "id": new_job_id(),
        "namespace": "default",
        "queue": "default",
        "task": "work",
        "payload": b"{}",
        "state": JobState.QUEUED,
        "created_at": T0,
        "run_at": T0,
        "max_attempts": 3,
        "backoff": "fixed:base=5,factor=2,cap=5,jitter=0",
    }
    values.update(fields)
    if values["run_at"] > values["created_at"] and "state" not in fields:
        values["state"] = JobState.SCHEDULED
    return Job(**values)
