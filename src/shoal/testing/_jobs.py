from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from shoal.core.ids import new_job_id
from shoal.core.model import Job, JobState, LeaseRef
from shoal.core.ports import ClaimRequest, Store

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


async def claim(store: Store, limit: int = 10, now: float = T0, **fields: object) -> list:  # type: ignore[type-arg]
    """Claim with the contract's defaults: `default/default`, worker `w1`, 30 s leases."""
    values: dict[str, object] = {
        "namespace": "default",
        "queues": ("default",),
        "worker_id": "w1",
        "limit": limit,
        "lease_ttl": 30.0,
        "now": now,
    }
    values.update(fields)
    return await store.claim(ClaimRequest(**values))  # type: ignore[arg-type]


def lease(job: object) -> LeaseRef:
    """The lease of a claimed job."""
    return LeaseRef(job.id, job.lease_token)  # type: ignore[attr-defined]
