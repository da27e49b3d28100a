"""`shoal.v1.JobService`: enqueue, read, steer and wait for jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from shoal.core.model import DEFAULT_NAMESPACE, JobQuery
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import Callers, CallerService
from shoal.protocols.grpc._enqueue_stream import EnqueueSessions
from shoal.protocols.grpc._status import mapped
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, jobs_pb2_grpc, model_pb2

__all__ = ["JobServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    """Each method decodes, calls one `QueueService` method, and encodes."""

    def __init__(self, callers: Callers, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._callers = callers
        #: The listener's message limit: a page of jobs is cut short to fit it.
        self._max_message_bytes = max_message_bytes
        #: The open enqueue streams (the listener ends them when it stops).
        self.enqueue_streams = EnqueueSessions()

    @property
    def _service(self) -> CallerService:
        # the service as the principal of the call being served may use it
        return self._callers.service()

    @mapped
    async def Enqueue(
        self, request: jobs_pb2.EnqueueRequest, context: Context
    ) -> jobs_pb2.EnqueueResponse:
        """Store one job."""
        item = await self._service.enqueue(codec.enqueue_from_pb(request))
        return jobs_pb2.EnqueueResponse(job=codec.job_to_pb(item.job), created=item.created)

    @mapped
    async def EnqueueMany(
        self, request: jobs_pb2.EnqueueManyRequest, context: Context
    ) -> jobs_pb2.EnqueueManyResponse:
        """Store many jobs, all or none."""
        items = await self._service.enqueue_many([codec.enqueue_from_pb(r) for r in request.jobs])
        return jobs_pb2.EnqueueManyResponse(
            results=[
                jobs_pb2.EnqueueResponse(job=codec.job_to_pb(item.job), created=item.created)
                for item in items
            ]
        )

    async def EnqueueStream(
        self, request_iterator: AsyncIterator[Any], context: Context
    ) -> AsyncIterator[jobs_pb2.EnqueueStreamResponse]:
        """Store batches sent on a stream, each answered after its commit (see the module)."""
        async for response in self.enqueue_streams.serve(self._service, request_iterator):
            yield response

    @mapped
    async def GetJob(self, request: jobs_pb2.GetJobRequest, context: Context) -> model_pb2.Job:
        """One job by id."""
        job = await self._service.get(codec.namespace(request.namespace), request.id)
        return codec.job_to_pb(job)

    @mapped
    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: Context
    ) -> jobs_pb2.ListJobsResponse:
        """A keyset page of jobs, newest first; fewer than `limit` (and a cursor to the rest)
        when they would not fit in one message together.
        """
        has = request.HasField
        query = JobQuery(
            namespace=request.namespace or DEFAULT_NAMESPACE,
            queue=request.queue or None,
            state=codec.state_from_pb(request.state),
            task=request.task or None,
            tag=request.tag or None,
            created_after=request.created_after if has("created_after") else None,
            created_before=request.created_before if has("created_before") else None,
            cursor=request.cursor or None,
            limit=request.limit or 50,
        )
        page = await self._service.list_jobs(query)
        jobs = [codec.job_to_pb(job) for job in page.jobs]
        # Fifty jobs of 1 MiB do not fit in 8 MiB: the page ends where they stop fitting, and
        # its cursor goes on from there (a message over the limit failed the call).
        fits = codec.fitting(jobs, self._max_message_bytes)
        if fits < len(jobs):
            page, jobs = page.cut(fits), jobs[:fits]
        return jobs_pb2.ListJobsResponse(jobs=jobs, next_cursor=page.next_cursor or "")

    @mapped
    async def CancelJob(
        self, request: jobs_pb2.CancelJobRequest, context: Context
    ) -> model_pb2.Job:
        """Cancel a waiting job, or ask a running one's worker to stop."""
        job = await self._service.cancel(codec.namespace(request.namespace), request.id)
        return codec.job_to_pb(job)

    @mapped
    async def RetryJob(self, request: jobs_pb2.RetryJobRequest, context: Context) -> model_pb2.Job:
        """Queue a failed or cancelled job again."""
        job = await self._service.retry(codec.namespace(request.namespace), request.id)
        return codec.job_to_pb(job)

    @mapped
    async def DeleteJob(
        self, request: jobs_pb2.DeleteJobRequest, context: Context
    ) -> jobs_pb2.DeleteJobResponse:
        """Remove a job that is not running."""
        await self._service.delete(codec.namespace(request.namespace), request.id)
        return jobs_pb2.DeleteJobResponse()

    @mapped
    async def WaitForJob(
        self, request: jobs_pb2.WaitForJobRequest, context: Context
    ) -> jobs_pb2.WaitForJobResponse:
        """The job once finished, or as it is when the timeout passes."""
        timeout = codec.wait_seconds("timeout", request.timeout)
        job = await self._service.wait_for(codec.namespace(request.namespace), request.id, timeout)
        return jobs_pb2.WaitForJobResponse(job=codec.job_to_pb(job), finished=job.is_terminal)
