"""`shoal.v1.QueueService`: queue statistics and controls."""

from __future__ import annotations

from typing import Any

import grpc.aio

from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import Callers, CallerService
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.shoal.v1 import queues_pb2, queues_pb2_grpc

__all__ = ["QueueServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class QueueServicer(queues_pb2_grpc.QueueServiceServicer):
    """Each method decodes, calls one `QueueService` method, and encodes."""

    def __init__(self, callers: Callers) -> None:
        self._callers = callers

    @property
    def _service(self) -> CallerService:
        # the service as the principal of the call being served may use it
        return self._callers.service()

    @mapped
    async def ListQueues(
        self, request: queues_pb2.ListQueuesRequest, context: Context
    ) -> queues_pb2.ListQueuesResponse:
        """The queues of a namespace with their counts."""
        queues = await self._service.list_queues(codec.namespace(request.namespace))
        return queues_pb2.ListQueuesResponse(
            queues=[
                queues_pb2.Queue(
                    namespace=queue.namespace,
                    name=queue.name,
                    paused=queue.paused,
                    counts=codec.counts_to_pb(queue.counts),
                )
                for queue in queues
            ]
        )

    @mapped
    async def GetQueueStats(
        self, request: queues_pb2.GetQueueStatsRequest, context: Context
    ) -> queues_pb2.GetQueueStatsResponse:
        """Counts by state and by task."""
        stats = await self._service.stats(codec.namespace(request.namespace), request.queue or None)
        return queues_pb2.GetQueueStatsResponse(
            by_state=codec.counts_to_pb(stats.by_state),
            by_task={task: codec.counts_to_pb(counts) for task, counts in stats.by_task.items()},
            total=stats.total,
        )

    @mapped
    async def PauseQueue(
        self, request: queues_pb2.PauseQueueRequest, context: Context
    ) -> queues_pb2.PauseQueueResponse:
        """Stop handing out the queue's jobs."""
        await self._service.pause_queue(codec.namespace(request.namespace), request.queue)
        return queues_pb2.PauseQueueResponse()

    @mapped
    async def ResumeQueue(
        self, request: queues_pb2.ResumeQueueRequest, context: Context
    ) -> queues_pb2.ResumeQueueResponse:
        """Hand out the queue's jobs again."""
        await self._service.resume_queue(codec.namespace(request.namespace), request.queue)
        return queues_pb2.ResumeQueueResponse()

    @mapped
    async def PurgeQueue(
        self, request: queues_pb2.PurgeQueueRequest, context: Context
    ) -> queues_pb2.PurgeQueueResponse:
        """Delete the queue's waiting jobs."""
        namespace = codec.namespace(request.namespace)
        count = await self._service.purge_queue(namespace, request.queue)
        await self._callers.audit("queue.purge", namespace, request.queue)
        return queues_pb2.PurgeQueueResponse(deleted=count)

    @mapped
    async def DeleteQueue(
        self, request: queues_pb2.DeleteQueueRequest, context: Context
    ) -> queues_pb2.DeleteQueueResponse:
        """Delete the queue and its jobs."""
        namespace = codec.namespace(request.namespace)
        count = await self._service.delete_queue(namespace, request.queue)
        await self._callers.audit("queue.delete", namespace, request.queue)
        return queues_pb2.DeleteQueueResponse(deleted=count)
