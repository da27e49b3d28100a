"""go-work compatibility: `cluster.v1.LeaderService` and `scheduler.v1.SchedulerService`
with the seed's package, service and message names, mapped onto `QueueService`.

A go-work deployment points both `LEADER_ADDR` and `SCHEDULER_ADDR` at shoal's gRPC port.
Tasks are jobs of the queue `go-work` (task `go-work`, payload as text, the go-work id kept as
the tag `go-work:<id>`); states map as PENDING = queued or scheduled, RUNNING = running,
COMPLETED = succeeded, ERROR = failed, CANCELLED = cancelled. Errors keep the seed's messages
("task required", "member not found", ...) with the status shoal maps them to.
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from shoal.core.errors import InvalidArgument
from shoal.core.model import JobQuery, JobState
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc._gowork_cluster import QUEUE, TASK, GoWorkCluster, tag_of, task_id_of
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.cluster.v1 import leader_pb2, leader_pb2_grpc
from shoal.protocols.grpc.gen.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

__all__ = ["GoWorkCluster", "LeaderServicer", "SchedulerServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

_STATUS_NAMES = {
    leader_pb2.HEARTBEAT_STATUS_IDLE: "idle",
    leader_pb2.HEARTBEAT_STATUS_BUSY: "busy",
    leader_pb2.HEARTBEAT_STATUS_FAILED: "failed",
}
#: go-work priority -> shoal priority (higher first).
_PRIORITIES = {
    scheduler_pb2.TASK_PRIORITY_UNSPECIFIED: 0,
    scheduler_pb2.TASK_PRIORITY_LOW: 0,
    scheduler_pb2.TASK_PRIORITY_MEDIUM: 1,
    scheduler_pb2.TASK_PRIORITY_HIGH: 2,
}
_PRIORITIES_BACK = {
    0: scheduler_pb2.TASK_PRIORITY_LOW,
    1: scheduler_pb2.TASK_PRIORITY_MEDIUM,
    2: scheduler_pb2.TASK_PRIORITY_HIGH,
}
_STATES = {
    JobState.SCHEDULED: scheduler_pb2.TASK_STATUS_PENDING,
    JobState.QUEUED: scheduler_pb2.TASK_STATUS_PENDING,
    JobState.RUNNING: scheduler_pb2.TASK_STATUS_RUNNING,
    JobState.SUCCEEDED: scheduler_pb2.TASK_STATUS_COMPLETED,
    JobState.FAILED: scheduler_pb2.TASK_STATUS_ERROR,
    JobState.CANCELLED: scheduler_pb2.TASK_STATUS_CANCELLED,
}


class LeaderServicer(leader_pb2_grpc.LeaderServiceServicer):
    """go-work's membership: join, leave, list and heartbeat."""

    def __init__(self, cluster: GoWorkCluster) -> None:
        self._cluster = cluster

    @mapped
    async def Join(
        self, request: leader_pb2.JoinRequest, context: Context
    ) -> leader_pb2.JoinResponse:
        """Add a member (replacing one with the same id)."""
        await self._cluster.join(request.id, request.address)
        return leader_pb2.JoinResponse()

    @mapped
    async def Leave(
        self, request: leader_pb2.LeaveRequest, context: Context
    ) -> leader_pb2.LeaveResponse:
        """Remove a member; NOT_FOUND for an unknown one."""
        await self._cluster.leave(request.id)
        return leader_pb2.LeaveResponse()

    @mapped
    async def Members(
        self, request: leader_pb2.MembersRequest, context: Context
    ) -> leader_pb2.MembersResponse:
        """Every member with its status text ("alive, idle", "left, unknown", ...)."""
        cluster = self._cluster
        now = cluster.service.clock.now()
        members = [
            leader_pb2.Member(
                id=member.id,
                address=member.address,
                status=member.describe(now, cluster.heartbeat_timeout),
            )
            for member in sorted(cluster.members.values(), key=lambda m: m.id)
        ]
        return leader_pb2.MembersResponse(members=members)

    @mapped
    async def Heartbeat(
        self, request: leader_pb2.HeartbeatRequest, context: Context
    ) -> leader_pb2.HeartbeatResponse:
        """A member's status; renews the lease of its task."""
        if request.status == leader_pb2.HEARTBEAT_STATUS_UNSPECIFIED:
            raise InvalidArgument("status", "UNSPECIFIED is an invalid status")
        status = _STATUS_NAMES.get(request.status)
        if status is None:
            raise InvalidArgument("status", "invalid status")
        await self._cluster.heartbeat(request.id, status)
        return leader_pb2.HeartbeatResponse()


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    """go-work's tasks: schedule, cancel, list and complete."""

    def __init__(self, cluster: GoWorkCluster) -> None:
        self._cluster = cluster

    @mapped
    async def ScheduleTask(
        self, request: scheduler_pb2.ScheduleTaskRequest, context: Context
    ) -> scheduler_pb2.ScheduleTaskResponse:
        """Enqueue a task; an id already pending or running is not enqueued twice."""
        if not request.HasField("task"):
            raise InvalidArgument("task", "task required")
        task = request.task
        if not task.id:
            raise InvalidArgument("task.id", "task id required")
        if not task.payload:
            raise InvalidArgument("task.payload", "task payload required")
        await self._cluster.service.enqueue(
            EnqueueRequest(
                task=TASK,
                queue=QUEUE,
                payload=task.payload.encode(),
                content_type="text/plain",
                priority=_PRIORITIES.get(task.priority, 0),
                idempotency_key=tag_of(task.id),
                tags=(tag_of(task.id),),
            )
        )
        return scheduler_pb2.ScheduleTaskResponse()

    @mapped
    async def CancelTask(
        self, request: scheduler_pb2.CancelTaskRequest, context: Context
    ) -> scheduler_pb2.CancelTaskResponse:
        """Cancel a task; a running one is stopped on its member. Finished: nothing to do."""
        job = await self._cluster.find(request.id)
        if not job.is_terminal:
            await self._cluster.service.cancel(job.namespace, job.id)
            await self._cluster.stop_task(job.id)  # done when the call returns, as in the seed
        return scheduler_pb2.CancelTaskResponse()

    @mapped
    async def GetTasks(
        self, request: scheduler_pb2.GetTasksRequest, context: Context
    ) -> scheduler_pb2.GetTasksResponse:
        """Every task, newest first."""
        limit = self._cluster.service.settings.limits.max_page
        page = await self._cluster.service.list_jobs(JobQuery(queue=QUEUE, limit=limit))
        tasks = [
            scheduler_pb2.Task(
                id=task_id_of(job),
                payload=job.payload.decode(errors="replace"),
                priority=_PRIORITIES_BACK.get(job.priority, scheduler_pb2.TASK_PRIORITY_LOW),
                status=_STATES[job.state],
            )
            for job in page.jobs
        ]
        return scheduler_pb2.GetTasksResponse(tasks=tasks)

    @mapped
    async def TaskComplete(
        self, request: scheduler_pb2.TaskCompleteRequest, context: Context
    ) -> scheduler_pb2.TaskCompleteResponse:
        """A member finished its task; ABORTED (lease_lost) if the task is not running there."""
        error = request.error if request.HasField("error") else None
        await self._cluster.complete(request.id, error)
        return scheduler_pb2.TaskCompleteResponse()
