from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shoal.core.auth import ROLE_ACTIONS, Action, Authorizer, Principal, Role
from shoal.core.errors import PermissionDenied, ShoalError
from shoal.core.guard import GuardedService
from shoal.core.model import JobError, JobQuery, LeaseRef, WorkerInfo
from shoal.core.service import ClaimInput, QueueService, ResumeInput
from shoal.core.validation import EnqueueRequest
from shoal.stores.memory import MemoryStore

#: Service methods only the server itself calls (on disconnects and by its timers).
INTERNAL = {"worker_gone", "take_back", "reap_expired", "forget_lost_workers", "finish_broadcasts"}

Call = Callable[[GuardedService], Awaitable[Any]]
NS = "team"
#: The live lease of the job each test claims first, so lease operations pass the service.
LEASE = [LeaseRef("x", "t")]
CALLS: dict[str, tuple[Action, Call]] = {
    "enqueue": (Action.ENQUEUE, lambda g: g.enqueue(EnqueueRequest("t", namespace=NS))),
    "enqueue_many": (Action.ENQUEUE, lambda g: g.enqueue_many([EnqueueRequest("t", namespace=NS)])),
    "get": (Action.READ, lambda g: g.get(NS, "x")),
    "list_jobs": (Action.READ, lambda g: g.list_jobs(JobQuery(namespace=NS))),
    "wait_for": (Action.READ, lambda g: g.wait_for(NS, "x", 0)),
    "cancel": (Action.STEER_JOB, lambda g: g.cancel(NS, "x")),
    "retry": (Action.STEER_JOB, lambda g: g.retry(NS, "x")),
    "delete": (Action.DELETE_JOB, lambda g: g.delete(NS, "x")),
    "list_queues": (Action.READ, lambda g: g.list_queues(NS)),
    "stats": (Action.READ, lambda g: g.stats(NS)),
    "pause_queue": (Action.MANAGE_QUEUES, lambda g: g.pause_queue(NS, "q")),
    "resume_queue": (Action.MANAGE_QUEUES, lambda g: g.resume_queue(NS, "q")),
    "purge_queue": (Action.MANAGE_QUEUES, lambda g: g.purge_queue(NS, "q")),
    "delete_queue": (Action.MANAGE_QUEUES, lambda g: g.delete_queue(NS, "q")),
    "register_worker": (
        Action.WORK,
        lambda g: g.register_worker(WorkerInfo("w", NS, ("q",), 0.0, 0.0)),
    ),
    "claim": (Action.WORK, lambda g: g.claim(ClaimInput("w", ("q",), namespace=NS))),
    "resume_worker": (
        Action.WORK,
        lambda g: g.resume_worker(ResumeInput("w2", "secret", tuple(LEASE), NS)),
    ),
    "heartbeat": (Action.WORK, lambda g: g.heartbeat(LEASE, "w", namespace=NS)),
    "complete": (Action.WORK, lambda g: g.complete(LEASE[0])),
    "fail": (Action.WORK, lambda g: g.fail(LEASE[0], JobError("E", ""))),
    "release": (Action.WORK, lambda g: g.release(LEASE)),
    "set_progress": (Action.WORK, lambda g: g.set_progress(LEASE[0], 0.5)),
    "list_workers": (Action.READ, lambda g: g.list_workers(NS)),
    "find_worker": (Action.READ, lambda g: g.find_worker(NS, "w")),
    "kick_worker": (Action.MANAGE_WORKERS, lambda g: g.kick_worker(NS, "w")),
    "drain_worker": (Action.MANAGE_WORKERS, lambda g: g.drain_worker(NS, "w")),
}


def public_async_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def test_every_service_operation_is_guarded_and_tested() -> None:
    assert public_async_methods(QueueService) - INTERNAL == public_async_methods(GuardedService)
    assert set(CALLS) == public_async_methods(GuardedService)


@pytest.mark.parametrize("role", [*Role, None])
@pytest.mark.parametrize("operation", sorted(CALLS))
async def test_each_role_may_do_exactly_its_actions(role: Role | None, operation: str) -> None:
    service = QueueService(MemoryStore())
    await service.enqueue(EnqueueRequest("t", namespace=NS, queue="q"))
    [job] = await service.claim(ClaimInput("w", ("q",), namespace=NS))
    await service.register_worker(WorkerInfo("w", NS, ("q",), 0.0, 0.0))
    LEASE[0] = LeaseRef(job.id, job.lease_token or "")
    grants = {NS: frozenset({role})} if role else {"other": frozenset(Role)}
    guarded = GuardedService(service, Principal("p", "token", grants), Authorizer())
    action, call = CALLS[operation]

    async def snapshot() -> tuple[object, ...]:
        jobs = await service.list_jobs(JobQuery(namespace=NS))
        return jobs, await service.list_queues(NS), await service.list_workers(NS)

    before = await snapshot()
    try:
        await call(guarded)
    except PermissionDenied:
        allowed = False
        assert await snapshot() == before, "a refused call changed something"
    except ShoalError:
        allowed = True  # got past the guard; the service refused (not found, lease lost...)
    else:
        allowed = True
    assert allowed == (role is not None and action in ROLE_ACTIONS[role])


@pytest.mark.parametrize("role", [Role.VIEWER, Role.PRODUCER, None])
async def test_a_heartbeat_refreshes_a_worker_record_only_where_its_caller_works(
    role: Role | None,
) -> None:
    # without leases nothing was checked: any principal kept any worker looking alive
    service = QueueService(MemoryStore())
    await service.register_worker(WorkerInfo("w", NS, ("q",), 0.0, 0.0))
    grants = {NS: frozenset({role})} if role else {"other": frozenset(Role)}
    guarded = GuardedService(service, Principal("p", "token", grants), Authorizer())
    await guarded.heartbeat([], "w", namespace=NS)
    [record] = await service.list_workers(NS)
    assert record.last_heartbeat == 0.0
