"""The admin calls over `shoal.v1` gRPC: the same method names as `QueueService` and
`ScheduleApi`, so `Admin` holds either this or the in-process service.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from shoal.core.errors import InvalidArgument
from shoal.core.model import (
    DEFAULT_QUEUE,
    Job,
    JobPage,
    JobQuery,
    JobState,
    QueueInfo,
    QueueStats,
    WorkerInfo,
    WorkerState,
)
from shoal.core.ports import Enqueued
from shoal.core.schedules import CatchUp, Overlap, ScheduleInput, ScheduleView
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import (
    jobs_pb2,
    model_pb2,
    queues_pb2,
    queues_pb2_grpc,
    schedules_pb2,
    schedules_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from shoal.sdk import _grpc_codec as codec
from shoal.sdk._grpc import GrpcTransport, _call

_STATES_PB: dict[JobState, Any] = {state: number for number, state in codec._STATES.items()}
_WORKER_STATES = {
    model_pb2.WORKER_STATE_IDLE: WorkerState.IDLE,
    model_pb2.WORKER_STATE_BUSY: WorkerState.BUSY,
    model_pb2.WORKER_STATE_DRAINING: WorkerState.DRAINING,
    model_pb2.WORKER_STATE_LOST: WorkerState.LOST,
}


def _counts(message: queues_pb2.StateCounts) -> dict[JobState, int]:
    known = {state.value: state for state in JobState}
    return {known[name]: n for name, n in message.counts.items() if name in known}


def _worker(message: model_pb2.Worker) -> WorkerInfo:
    return WorkerInfo(
        id=message.id,
        namespace=message.namespace,
        queues=tuple(message.queues),
        connected_at=message.connected_at,
        last_heartbeat=message.last_heartbeat,
        state=_WORKER_STATES.get(message.state, WorkerState.IDLE),
        tasks=tuple(message.tasks),
        concurrency=message.concurrency,
        language=message.language,
        host=message.host,
        pid=message.pid,
        running=message.running,
    )


def _spec(data: ScheduleInput) -> schedules_pb2.ScheduleSpec:
    spec = schedules_pb2.ScheduleSpec(
        namespace=data.namespace,
        id=data.id or "",
        queue=data.queue,
        task=data.task,
        timezone=data.timezone,
        payload=data.payload,
        content_type=data.content_type,
        priority=data.priority,
        tags=data.tags,
        overlap=str(data.overlap),
        catch_up=str(data.catch_up),
        catch_up_limit=data.catch_up_limit,
        jitter_ms=data.jitter_ms,
        paused=data.paused,
    )
    optional = {
        "every_ms": data.every_ms,
        "cron": data.cron,
        "at": data.at,
        "max_attempts": data.max_attempts,
        "timeout": data.timeout,
        "start_at": data.start_at,
        "end_at": data.end_at,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(spec, name, value)
    return spec


def _schedule(message: schedules_pb2.Schedule) -> ScheduleView:
    spec = message.spec
    trigger = spec.WhichOneof("trigger")
    kind = {"every_ms": "interval", "cron": "cron", "at": "once"}.get(trigger or "", "")

    def optional(owner: Any, name: str) -> Any:
        return getattr(owner, name) if owner.HasField(name) else None

    return ScheduleView(
        id=spec.id,
        namespace=spec.namespace,
        queue=spec.queue or DEFAULT_QUEUE,
        task=spec.task,
        kind=kind,
        every_ms=spec.every_ms if trigger == "every_ms" else None,
        cron=spec.cron if trigger == "cron" else None,
        timezone=spec.timezone or "UTC",
        at=spec.at if trigger == "at" else None,
        paused=spec.paused,
        overlap=Overlap(spec.overlap or "allow"),
        catch_up=CatchUp(spec.catch_up or "one"),
        catch_up_limit=spec.catch_up_limit,
        jitter_ms=spec.jitter_ms,
        priority=spec.priority,
        max_attempts=optional(spec, "max_attempts"),
        timeout=optional(spec, "timeout"),
        tags=tuple(spec.tags),
        payload=spec.payload,
        content_type=spec.content_type or "application/json",
        created_at=message.created_at,
        start_at=optional(spec, "start_at"),
        end_at=optional(spec, "end_at"),
        next_fire_at=optional(message, "next_fire_at"),
        last_fire_at=optional(message, "last_fire_at"),
        last_job_id=message.last_job_id or None,
    )


class GrpcAdminService:
    """Jobs, queues and workers of a server, named like `QueueService`'s methods."""

    def __init__(self, transport: GrpcTransport) -> None:
        channel = transport.channel
        self._transport = transport
        self._jobs: Any = transport._jobs
        self._queues: Any = queues_pb2_grpc.QueueServiceStub(channel)  # type: ignore[no-untyped-call]
        self._workers: Any = workers_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """See `QueueService.enqueue_many`."""
        return await self._transport.enqueue(requests)

    async def get(self, namespace: str, job_id: str) -> Job:
        """See `QueueService.get`."""
        return await self._transport.get(namespace, job_id)

    async def wait_for(self, namespace: str, job_id: str, timeout: float) -> Job:
        """See `QueueService.wait_for`."""
        return await self._transport.wait(namespace, job_id, timeout)

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """See `QueueService.list_jobs`."""
        request = jobs_pb2.ListJobsRequest(
            namespace=query.namespace,
            queue=query.queue or "",
            state=_STATES_PB[query.state] if query.state else model_pb2.JOB_STATE_UNSPECIFIED,
            task=query.task or "",
            tag=query.tag or "",
            cursor=query.cursor or "",
            limit=query.limit,
        )
        if query.created_after is not None:
            request.created_after = query.created_after
        if query.created_before is not None:
            request.created_before = query.created_before
        response = await _call(self._jobs.ListJobs(request))
        jobs = tuple(codec.job_from_pb(job) for job in response.jobs)
        return JobPage(jobs, response.next_cursor or None)

    async def cancel(self, namespace: str, job_id: str) -> Job:
        """See `QueueService.cancel`."""
        return await self._transport.cancel(namespace, job_id)

    async def retry(self, namespace: str, job_id: str) -> Job:
        """See `QueueService.retry`."""
        request = jobs_pb2.RetryJobRequest(namespace=namespace, id=job_id)
        return codec.job_from_pb(await _call(self._jobs.RetryJob(request)))

    async def delete(self, namespace: str, job_id: str) -> None:
        """See `QueueService.delete`."""
        await _call(self._jobs.DeleteJob(jobs_pb2.DeleteJobRequest(namespace=namespace, id=job_id)))

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        """See `QueueService.list_queues`."""
        response = await _call(
            self._queues.ListQueues(queues_pb2.ListQueuesRequest(namespace=namespace))
        )
        return [
            QueueInfo(queue.namespace, queue.name, queue.paused, _counts(queue.counts))
            for queue in response.queues
        ]

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        """See `QueueService.stats`."""
        return await self._transport.stats(namespace, queue)

    async def pause_queue(self, namespace: str, queue: str) -> None:
        """See `QueueService.pause_queue`."""
        request = queues_pb2.PauseQueueRequest(namespace=namespace, queue=queue)
        await _call(self._queues.PauseQueue(request))

    async def resume_queue(self, namespace: str, queue: str) -> None:
        """See `QueueService.resume_queue`."""
        request = queues_pb2.ResumeQueueRequest(namespace=namespace, queue=queue)
        await _call(self._queues.ResumeQueue(request))

    async def purge_queue(self, namespace: str, queue: str) -> int:
        """See `QueueService.purge_queue`."""
        request = queues_pb2.PurgeQueueRequest(namespace=namespace, queue=queue)
        return int((await _call(self._queues.PurgeQueue(request))).deleted)

    async def delete_queue(self, namespace: str, queue: str) -> int:
        """See `QueueService.delete_queue`."""
        request = queues_pb2.DeleteQueueRequest(namespace=namespace, queue=queue)
        return int((await _call(self._queues.DeleteQueue(request))).deleted)

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        """See `QueueService.list_workers`."""
        request = workers_pb2.ListWorkersRequest(namespace=namespace or "")
        response = await _call(self._workers.ListWorkers(request))
        return [_worker(worker) for worker in response.workers]

    async def kick_worker(self, namespace: str, worker_id: str) -> list[str]:
        """Disconnect a worker; the ids of the jobs whose lease ended."""
        request = workers_pb2.KickWorkerRequest(namespace=namespace, worker_id=worker_id)
        return list((await _call(self._workers.KickWorker(request))).released)

    async def drain_worker(self, namespace: str, worker_id: str) -> WorkerInfo:
        """See `QueueService.drain_worker`."""
        request = workers_pb2.DrainWorkerRequest(namespace=namespace, worker_id=worker_id)
        return _worker(await _call(self._workers.DrainWorker(request)))


class GrpcSchedules:
    """A server's schedules, as a `ScheduleApi`."""

    def __init__(self, transport: GrpcTransport) -> None:
        self._stub: Any = schedules_pb2_grpc.ScheduleServiceStub(transport.channel)  # type: ignore[no-untyped-call]

    async def add(self, data: ScheduleInput) -> ScheduleView:
        """See `ScheduleApi.add`."""
        return _schedule(await _call(self._stub.CreateSchedule(_spec(data))))

    async def put(self, data: ScheduleInput) -> ScheduleView:
        """See `ScheduleApi.put`."""
        return _schedule(await _call(self._stub.PutSchedule(_spec(data))))

    async def get(self, namespace: str, schedule_id: str) -> ScheduleView:
        """See `ScheduleApi.get`."""
        ref = schedules_pb2.ScheduleRef(namespace=namespace, id=schedule_id)
        return _schedule(await _call(self._stub.GetSchedule(ref)))

    async def list(self, namespace: str | None = None) -> builtins.list[ScheduleView]:
        """See `ScheduleApi.list`."""
        request = schedules_pb2.ListSchedulesRequest(namespace=namespace or "")
        response = await _call(self._stub.ListSchedules(request))
        return [_schedule(item) for item in response.schedules]

    async def remove(self, namespace: str, schedule_id: str) -> None:
        """See `ScheduleApi.remove`."""
        ref = schedules_pb2.ScheduleRef(namespace=namespace, id=schedule_id)
        await _call(self._stub.DeleteSchedule(ref))

    async def pause(self, namespace: str, schedule_id: str) -> ScheduleView:
        """See `ScheduleApi.pause`."""
        ref = schedules_pb2.ScheduleRef(namespace=namespace, id=schedule_id)
        return _schedule(await _call(self._stub.PauseSchedule(ref)))

    async def resume(self, namespace: str, schedule_id: str) -> ScheduleView:
        """See `ScheduleApi.resume`."""
        ref = schedules_pb2.ScheduleRef(namespace=namespace, id=schedule_id)
        return _schedule(await _call(self._stub.ResumeSchedule(ref)))

    async def trigger_now(self, namespace: str, schedule_id: str) -> Enqueued:
        """See `ScheduleApi.trigger_now`."""
        ref = schedules_pb2.ScheduleRef(namespace=namespace, id=schedule_id)
        return Enqueued(codec.job_from_pb(await _call(self._stub.TriggerSchedule(ref))), True)

    async def backfill(
        self, namespace: str, schedule_id: str, start: float, end: float
    ) -> builtins.list[Enqueued]:
        """Not offered by `shoal.v1` gRPC (the HTTP API and local URLs have it)."""
        raise InvalidArgument(
            "url", "backfill is not offered over gRPC; use the HTTP API or a sqlite:/// URL"
        )

    async def upcoming(
        self, namespace: str, schedule_id: str, count: int = 5
    ) -> builtins.list[float]:
        """The next fire and, for an interval, the ones after it (gRPC has no upcoming call)."""
        view = await self.get(namespace, schedule_id)
        if view.next_fire_at is None:
            return []
        if view.every_ms is None:
            return [view.next_fire_at]
        step = view.every_ms / 1000
        fires = [view.next_fire_at + n * step for n in range(count)]
        return [fire for fire in fires if view.end_at is None or fire <= view.end_at]
