"""Handlers of the producer and admin commands: queues, jobs, stats, HEALTH and the dumps."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shoal.core.auth import Action
from shoal.core.errors import Conflict, NotFound
from shoal.core.model import Job, JobError, JobQuery, JobState
from shoal.core.schedules import ScheduleView
from shoal.core.validation import EnqueueRequest
from shoal.protocols.tcp._recurrent import cron_text
from shoal.protocols.tcp.commands import Command, ErrorCode
from shoal.protocols.tcp.replies import (
    OK,
    ErrorReply,
    GoQueue,
    JsonReply,
    OkId,
    Reply,
    debug_lines,
    go_debug,
    go_health,
    go_job_from,
    go_queue,
    go_recurrent_job,
    go_stats,
    go_worker,
)

if TYPE_CHECKING:
    from shoal.protocols.tcp.session import Session

_DELETED = JobError("deleted", "DELETE_JOB while the job ran")


def _content_type(payload: str) -> str:
    # Jobatator payloads are any text; label JSON as such so other surfaces decode it.
    try:
        json.loads(payload)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


def _request(session: Session, command: Command) -> EnqueueRequest:
    queue, task, payload = command.args
    return EnqueueRequest(
        task=task,
        payload=payload.encode(),
        namespace=session.group,
        queue=queue,
        content_type=_content_type(payload),
    )


async def _publish(session: Session, command: Command) -> Reply:
    request = _request(session, command)
    enqueued = await session.require_guarded().enqueue(request)
    session.hub.declare(session.group, request.queue)
    return OkId(enqueued.job.id)


async def publish_many(session: Session, commands: Sequence[Command]) -> list[Reply]:
    """Pipelined PUBLISHes (checks passed) in one store call: one transaction, one commit.

    `enqueue_many` stores nothing when any job is refused; then each command runs on its
    own, so each gets its own reply, as if they had come one by one. So does an unexpected
    failure: `execute` logs it and answers `internal` per command, where letting it out
    would end the connection with no reply at all.
    """
    requests = [_request(session, command) for command in commands]
    try:
        results = await session.require_guarded().enqueue_many(requests)
    except Exception:
        return [reply for command in commands for reply in await session.execute(command)]
    for request in requests:
        session.hub.declare(session.group, request.queue)
    return [OkId(result.job.id) for result in results]


# --- views ----------------------------------------------------------------------------------


async def queue_jobs(session: Session, namespace: str, queue: str) -> list[Job]:
    """The queue's jobs, oldest first, at most `max_listed_jobs` (the newest)."""
    service = session.hub.service
    wanted = session.hub.settings.max_listed_jobs
    jobs: list[Job] = []
    cursor: str | None = None
    while len(jobs) < wanted:
        limit = min(wanted - len(jobs), service.settings.limits.max_page)
        page = await service.list_jobs(JobQuery(namespace, queue, cursor=cursor, limit=limit))
        jobs += page.jobs
        cursor = page.next_cursor
        if cursor is None:
            break
    jobs.reverse()
    return jobs


async def queue_view(
    session: Session, namespace: str, queue: str, schedules: Sequence[ScheduleView]
) -> GoQueue:
    """A queue as LIST_QUEUES and the dumps show it, with its jobs, recurrent jobs, workers."""
    hub = session.hub
    jobs = [go_job_from(job) for job in await queue_jobs(session, namespace, queue)]
    recurrent = [
        go_recurrent_job(entry_id=hub.entry_id(s.namespace, s.id), type=s.task, cron=cron_text(s))
        for s in schedules
        if s.queue == queue
    ]
    workers = [
        go_worker(
            username=other.username,
            groups=other.groups(),
            addr=other.addr,
            current_group=other.group,
            status=other.worker.status,
        )
        for other in hub.workers_of(namespace, queue)
    ]
    purged = (namespace, queue) in hub.purged
    return go_queue(
        id=hub.queue_id(namespace, queue),
        slug=queue,
        group=namespace,
        recurrent_jobs=recurrent or None,
        jobs=jobs or ([] if purged else None),
        workers=workers or None,
    )


async def group_queues(session: Session, namespace: str) -> list[GoQueue]:
    """Every queue of a namespace, as views."""
    schedules = await session.hub.schedules.list(namespace)
    stored = await session.hub.service.list_queues(namespace)
    names = {info.name for info in stored} | session.hub.declared_in(namespace)
    names |= {schedule.queue for schedule in schedules}
    return [await queue_view(session, namespace, name, schedules) for name in sorted(names)]


# --- queue commands -------------------------------------------------------------------------


async def _list_queues(session: Session, command: Command) -> Reply:
    session.require(Action.READ)
    return JsonReply(await group_queues(session, session.group) or None)


async def _delete_queue(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    if not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    await session.require_guarded().delete_queue(session.group, queue)
    schedules = session.require_schedules()
    for schedule in await schedules.list(session.group):
        if schedule.queue == queue:
            try:
                await schedules.remove(session.group, schedule.id)
            except NotFound:
                pass
    for other in list(session.hub.workers_of(session.group, queue)):
        other.worker.remove(session.group, queue)
    session.hub.forget(session.group, queue)
    await session.audit("queue.delete", queue)
    return OK


async def _purge_jobs(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    if not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    await session.require_guarded().purge_queue(session.group, queue)
    await session.audit("queue.purge", queue)
    session.hub.purged.add((session.group, queue))
    return OK


async def _list_jobs(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    if not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    session.require(Action.READ)
    jobs = [go_job_from(job) for job in await queue_jobs(session, session.group, queue)]
    purged = (session.group, queue) in session.hub.purged
    return JsonReply(jobs or ([] if purged else None))


async def _stats(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    if not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    return JsonReply(go_stats(queue, await session.require_guarded().stats(session.group, queue)))


# --- job commands ---------------------------------------------------------------------------


async def _delete_job(session: Session, command: Command) -> Reply:
    job = await session.find_job(command.args[0])
    guarded = session.require_guarded()
    # Checked before the cancel and the fail below, which a principal without this right
    # could otherwise make happen through a refused DELETE_JOB.
    session.require(Action.DELETE_JOB, job.namespace)
    if job.state is JobState.RUNNING:
        await guarded.cancel(job.namespace, job.id)
        holder = next((s for s in session.hub.sessions.values() if job.id in s.worker.leases), None)
        if holder is None:
            return OK  # another surface's worker: cancelled when it reports or its lease ends
        _, lease = holder.worker.leases[job.id]
        await session.hub.service.fail(lease, _DELETED)  # cancel requested: ends cancelled
        holder.worker.drop(job.id)
    await guarded.delete(job.namespace, job.id)
    return OK


async def _cancel_job(session: Session, command: Command) -> Reply:
    job = await session.find_job(command.args[0])
    await session.require_guarded().cancel(job.namespace, job.id)
    return OK


async def _retry_job(session: Session, command: Command) -> Reply:
    job = await session.find_job(command.args[0])
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        raise Conflict(f"job {job.id} is {job.state.value}")
    await session.require_guarded().retry(job.namespace, job.id)
    return OK


# --- health and dumps -----------------------------------------------------------------------


async def _all_groups(session: Session) -> list[str]:
    return sorted(await session.known_groups())


async def _health(session: Session, command: Command) -> Reply:
    hub = session.hub
    queues = jobs = 0
    for namespace in await _all_groups(session):
        if not session.may(Action.READ, namespace):
            continue  # counted only where the user may list queues and jobs
        infos = await hub.service.list_queues(namespace)
        names = {info.name for info in infos} | hub.declared_in(namespace)
        queues += len(names)
        jobs += sum(sum(info.counts.values()) for info in infos)
    sessions = list(hub.sessions.values())
    return JsonReply(
        go_health(
            uptime=int(time.monotonic() - hub.started),
            version=f"python{platform.python_version()}",
            num_cpu=os.cpu_count() or 1,
            num_tasks=len(asyncio.all_tasks()),
            num_sessions=len(sessions),
            num_authed=sum(s.authenticated for s in sessions),
            num_groups=0,  # never filled upstream
            num_users=0,
            num_queues=queues,
            num_jobs=jobs,
            num_workers=sum(s.worker.is_worker for s in sessions),
            unix_timestamp=int(time.time()),
        )
    )


async def _dump(session: Session) -> tuple[list[str], list[GoQueue]]:
    groups = await _all_groups(session)
    queues: list[GoQueue] = []
    for namespace in groups:
        queues += await group_queues(session, namespace)
    return groups, queues


async def _debug(session: Session, command: Command) -> Reply:
    if not session.hub.settings.test_mode:
        return ErrorReply(ErrorCode.TEST_MODE_DISABLED)
    groups, queues = await _dump(session)
    sessions = [other.view() for other in session.hub.sessions.values()]
    return debug_lines(groups=groups, sessions=sessions, queues=queues)


async def _debug_json(session: Session, command: Command) -> Reply:
    if not session.hub.settings.test_mode:
        return ErrorReply(ErrorCode.TEST_MODE_DISABLED)
    hub = session.hub
    groups, queues = await _dump(session)
    users = [
        go_worker(username=user.name, groups=sorted(user.grants), addr="", current_group="")
        for user in await hub.access.store.list_users()
    ]
    return JsonReply(
        go_debug(
            queues=queues or None,
            groups=groups,
            sessions=[other.view() for other in hub.sessions.values()],
            users=users,
            host=hub.host,
            port=hub.port,
        )
    )


#: Handlers of the producer and admin commands, by name.
HANDLERS = {
    "PUBLISH": _publish,
    "LIST_QUEUES": _list_queues,
    "DELETE_QUEUE": _delete_queue,
    "PURGE_JOBS": _purge_jobs,
    "LIST_JOBS": _list_jobs,
    "STATS": _stats,
    "DELETE_JOB": _delete_job,
    "CANCEL_JOB": _cancel_job,
    "RETRY_JOB": _retry_job,
    "HEALTH": _health,
    "DEBUG": _debug,
    "DEBUG_JSON": _debug_json,
}
