"""The client's side of the `shoal.v1` messages: core types to protobuf and back, and gRPC
failures to the `ShoalError` the server raised (its code travels in trailing metadata).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import grpc.aio

from shoal.core.errors import ShoalError, Unavailable, error_from_code
from shoal.core.events import Event
from shoal.core.model import Job, JobError, JobId, JobState, LeaseRef, QueueStats
from shoal.core.validation import MAX_MESSAGE_BYTES, EnqueueRequest, Limits, check_enqueue
from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    jobs_pb2,
    model_pb2,
    queues_pb2,
)

#: Job states by their wire number.
STATES: dict[int, JobState] = {
    model_pb2.JOB_STATE_SCHEDULED: JobState.SCHEDULED,
    model_pb2.JOB_STATE_QUEUED: JobState.QUEUED,
    model_pb2.JOB_STATE_RUNNING: JobState.RUNNING,
    model_pb2.JOB_STATE_SUCCEEDED: JobState.SUCCEEDED,
    model_pb2.JOB_STATE_FAILED: JobState.FAILED,
    model_pb2.JOB_STATE_CANCELLED: JobState.CANCELLED,
}
_STATES = STATES  # the name _admin_grpc knows
_CODE_KEY = "shoal-error-code"
_FIELD_KEY = "shoal-error-field"


def error_from_rpc(error: grpc.aio.AioRpcError) -> ShoalError:
    """The shoal error a failed call carries; `Unavailable` when the server was not reached."""
    pairs: Any = error.trailing_metadata() or ()  # aio Metadata: (key, value) pairs
    metadata = {key: value for key, value in pairs}
    code = metadata.get(_CODE_KEY)
    message = error.details() or error.code().name
    if isinstance(code, str):
        field = metadata.get(_FIELD_KEY)
        return error_from_code(code, message, field if isinstance(field, str) else None)
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return Unavailable(f"the shoal server is not reachable: {message}")
    return ShoalError(f"{error.code().name}: {message}")


#: The checks a client makes of a request protobuf refused: its shape, as the service checks
#: it (a bad type raised protobuf's ValueError or TypeError, where local mode raised
#: InvalidArgument). The size limits are the server's to enforce; these only keep the values
#: within what the wire can carry.
_SHAPE_ONLY = Limits(max_payload_bytes=MAX_MESSAGE_BYTES, max_attempts=2**31 - 1)


def enqueue_to_pb(request: EnqueueRequest) -> jobs_pb2.EnqueueRequest:
    """An enqueue request on the wire. `InvalidArgument`, as the service would raise it, for
    a value the wire cannot carry (checked only then: this runs per job of a bulk enqueue, and
    a value the wire carries the server checks).
    """
    try:
        return _encode(request)
    except (ValueError, TypeError):
        check_enqueue(request, _SHAPE_ONLY)
        raise


def _encode(request: EnqueueRequest) -> jobs_pb2.EnqueueRequest:
    # fields at their wire default are left out: each keyword costs, per job of a bulk enqueue
    fields: dict[str, Any] = {
        "namespace": request.namespace,
        "queue": request.queue,
        "task": request.task,
        "payload": request.payload,
    }
    if request.content_type != "application/json":
        fields["content_type"] = request.content_type
    if request.priority:
        fields["priority"] = request.priority
    if request.dedupe_window:
        fields["dedupe_window"] = _number(request, request.dedupe_window)
    if request.tags:
        fields["tags"] = request.tags
    if request.parent_id:
        fields["parent_id"] = request.parent_id
    for name in _OPTIONAL:
        value = getattr(request, name)
        if value is not None:
            fields[name] = _number(request, value)
    policy = request.backoff
    if policy is not None:
        fields["backoff"] = model_pb2.Backoff(
            kind=policy.kind,
            base=policy.base,
            factor=policy.factor,
            cap=policy.cap,
            jitter=policy.jitter,
        )
    return jobs_pb2.EnqueueRequest(**fields)


def _number(request: EnqueueRequest, value: Any) -> Any:
    """`value`, refused as the service would refuse it when it is a bool: protobuf takes True
    for a double, as 1.0.
    """
    if type(value) is bool:
        check_enqueue(request, _SHAPE_ONLY)
    return value


#: The enqueue options whose presence on the wire means "set" (unset: the queue's policy).
_OPTIONAL = ("delay", "run_at", "max_attempts", "timeout", "idempotency_key")


def _optional(message: model_pb2.Job, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


def job_from_pb(message: model_pb2.Job, lease_token: str | None = None) -> Job:
    """A job from the wire (with the lease token of an assignment)."""
    error = None
    if message.HasField("error"):
        error = JobError(
            message.error.type,
            message.error.message,
            message.error.traceback,
            message.error.retryable,
        )
    return Job(
        id=JobId(message.id),
        namespace=message.namespace,
        queue=message.queue,
        task=message.task,
        payload=message.payload,
        state=STATES[message.state],
        created_at=message.created_at,
        run_at=message.run_at,
        content_type=message.content_type or "application/json",
        priority=message.priority,
        attempt=message.attempt,
        max_attempts=message.max_attempts,
        backoff=message.backoff,
        timeout=_optional(message, "timeout"),
        idempotency_key=message.idempotency_key if message.HasField("idempotency_key") else None,
        tags=tuple(tags) if (tags := message.tags) else (),
        result=message.result if message.HasField("result") else None,
        error=error,
        started_at=_optional(message, "started_at"),
        finished_at=_optional(message, "finished_at"),
        worker_id=message.worker_id or None,
        lease_token=lease_token,
        lease_expires_at=_optional(message, "lease_expires_at"),
        cancel_requested=message.cancel_requested,
        progress=_optional(message, "progress"),
        parent_id=message.parent_id or None,
        schedule_id=message.schedule_id or None,
    )


def error_to_pb(error: JobError) -> model_pb2.JobError:
    """A failed attempt's error on the wire."""
    return model_pb2.JobError(
        type=error.type, message=error.message, traceback=error.traceback, retryable=error.retryable
    )


def lease_to_pb(lease: LeaseRef) -> model_pb2.Lease:
    """A lease on the wire."""
    return model_pb2.Lease(job_id=lease.job_id, token=lease.token)


def event_from_pb(message: events_pb2.Event) -> Event:
    """A lifecycle event from the wire."""
    return Event(
        kind=message.kind,
        namespace=message.namespace,
        at=message.at,
        job_id=message.job_id or None,
        queue=message.queue or None,
        task=message.task or None,
        state=message.state or None,
        worker_id=message.worker_id or None,
        attempt=message.attempt or None,
        data=dict(message.data),
    )


def stats_from_pb(message: queues_pb2.GetQueueStatsResponse) -> QueueStats:
    """Queue counts from the wire (state names the client does not know are skipped)."""

    def counts(source: Mapping[str, int]) -> dict[JobState, int]:
        known = {state.value: state for state in JobState}
        return {known[name]: count for name, count in source.items() if name in known}

    by_task = {task: counts(value.counts) for task, value in message.by_task.items()}
    return QueueStats(by_state=counts(message.by_state.counts), by_task=by_task)
