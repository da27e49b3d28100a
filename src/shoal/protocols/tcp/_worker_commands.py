"""The commands of a TCP worker: subscriptions, and the outcome of the job it was pushed.

`UPDATE_JOB` answers a dispatch line (`dispatch.WorkerLink`): `in-progress` renews the lease,
`done` completes the job, `errored` fails it (the queue's retry policy, or at once with
`delay_policy: IGNORE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoal.core.auth import Action
from shoal.core.errors import LeaseLost
from shoal.core.model import JobError, JobState
from shoal.protocols.tcp.commands import Command, ErrorCode, JobatatorState, update_state
from shoal.protocols.tcp.replies import OK, ErrorReply, JsonReply, Reply, go_heartbeat

if TYPE_CHECKING:
    from shoal.protocols.tcp.session import Session

__all__ = ["HANDLERS"]

#: The error a job gets when its worker marks it `errored` (Jobatator sends no reason).
_ERRORED = JobError("errored", "the worker marked the job errored")


async def _subscribe(session: Session, command: Command) -> Reply:
    await session.worker.subscribe(session.group, command.args[0])
    session.hub.declare(session.group, command.args[0])
    return OK


async def _unsubscribe(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    if not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    await session.worker.unsubscribe(session.group, queue)
    return OK


async def _purge_workers(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    if not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    session.require(Action.MANAGE_WORKERS)
    for other in list(session.hub.workers_of(session.group, queue)):
        other.worker.remove(session.group, queue)
    await session.audit("worker.purge", queue)
    return OK


async def _update_job(session: Session, command: Command) -> Reply:
    job_id, text = command.args
    link = session.worker
    held = link.leases.get(job_id)
    if held is None:
        await session.find_job(job_id)  # NotFound: unknown-job
        if update_state(text) is None:
            return ErrorReply(ErrorCode.UNKNOWN_STATE)
        return ErrorReply(ErrorCode.LEASE_LOST)
    state = update_state(text)
    if state is None:
        return ErrorReply(ErrorCode.UNKNOWN_STATE)
    namespace, lease = held
    guarded = session.require_guarded()
    try:
        if state is JobatatorState.IN_PROGRESS:
            worker_id = link.id_in(namespace)
            result = await guarded.heartbeat([lease], worker_id, namespace=namespace)
            if job_id in result.lost:
                raise LeaseLost(f"lease on job {job_id} is not held")
            return OK
        if state is JobatatorState.DONE:
            await guarded.complete(lease)
            link.drop(job_id)
            await session.hub.retire(namespace, job_id)
            return OK
        delay = 0.0 if session.hub.settings.ignore_delays else None
        job = await guarded.fail(lease, _ERRORED, retry_delay=delay)
    except LeaseLost:
        link.drop(job_id)
        raise
    link.drop(job_id)
    service = session.hub.service
    if job.state is JobState.SCHEDULED and job.run_at <= service.clock.now():
        service.ready.notify(job.namespace, job.queue)  # other waiting workers may take it
    return OK


async def _heartbeat(session: Session, command: Command) -> Reply:
    return JsonReply(go_heartbeat(await session.worker.heartbeat()))


#: Handlers of the worker-side commands, by name.
HANDLERS = {
    "SUBSCRIBE": _subscribe,
    "UNSUBSCRIBE": _unsubscribe,
    "PURGE_WORKERS": _purge_workers,
    "UPDATE_JOB": _update_job,
    "HEARTBEAT": _heartbeat,
}
