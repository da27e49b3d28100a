"""Conversions between the core model and the shoal.v1 messages; no I/O, no rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.message import Message

from shoal.core.errors import InvalidArgument
from shoal.core.events import Event
from shoal.core.model import (
    DEFAULT_NAMESPACE,
    DEFAULT_QUEUE,
    Job,
    JobError,
    JobState,
    LeaseRef,
    WorkerInfo,
    WorkerState,
)
from shoal.core.retry import RetryPolicy
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    jobs_pb2,
    model_pb2,
    queues_pb2,
    workers_pb2,
)

#: Longest long poll (wait-for-result, fetch) a caller may ask for, in seconds.
MAX_WAIT = 300.0
#: Room kept below the listener's message limit for what the parts counted against it leave
#: out: the enclosing messages, a page's cursor. grpc ends a call whose message is over the
#: limit (a worker stream with every lease it holds), and the native framing's client refuses
#: the frame.
MESSAGE_ROOM = 1024
#: What an element of a repeated message field adds to its own size: its tag and length.
_ELEMENT = 6

_STATES: dict[JobState, model_pb2.JobState] = {
    JobState.SCHEDULED: model_pb2.JOB_STATE_SCHEDULED,
    JobState.QUEUED: model_pb2.JOB_STATE_QUEUED,
    JobState.RUNNING: model_pb2.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: model_pb2.JOB_STATE_SUCCEEDED,
    JobState.FAILED: model_pb2.JOB_STATE_FAILED,
    JobState.CANCELLED: model_pb2.JOB_STATE_CANCELLED,
}
_STATES_BACK = {number: state for state, number in _STATES.items()}
_WORKER_STATES: dict[WorkerState, model_pb2.WorkerState] = {
    WorkerState.IDLE: model_pb2.WORKER_STATE_IDLE,
    WorkerState.BUSY: model_pb2.WORKER_STATE_BUSY,
    WorkerState.DRAINING: model_pb2.WORKER_STATE_DRAINING,
    WorkerState.LOST: model_pb2.WORKER_STATE_LOST,
}


def namespace(text: str) -> str:
    """The namespace a request names, `default` when empty."""
    return text or DEFAULT_NAMESPACE


def wait_seconds(field: str, value: float) -> float:
    """A long-poll duration, refused when negative and capped at `MAX_WAIT`."""
    if value < 0 or value != value:
        raise InvalidArgument(field, "must not be negative")
    return min(value, MAX_WAIT)


def state_to_pb(state: JobState) -> model_pb2.JobState:
    """The wire enum of a job state."""
    return _STATES[state]


def state_from_pb(number: int) -> JobState | None:
    """A job state from its wire enum; None for unspecified, `InvalidArgument` if unknown."""
    if number == model_pb2.JOB_STATE_UNSPECIFIED:
        return None
    try:
        return _STATES_BACK[number]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument("state", f"unknown job state number {number}") from None


def job_to_pb(job: Job) -> model_pb2.Job:
    """A job as sent to a client (never with its lease token)."""
    message = model_pb2.Job(
        id=job.id,
        namespace=job.namespace,
        queue=job.queue,
        task=job.task,
        payload=job.payload,
        content_type=job.content_type,
        state=_STATES[job.state],
        priority=job.priority,
        created_at=job.created_at,
        run_at=job.run_at,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        backoff=job.backoff,
        tags=job.tags,
        worker_id=job.worker_id or "",
        cancel_requested=job.cancel_requested,
        parent_id=job.parent_id or "",
        schedule_id=job.schedule_id or "",
    )
    optional = {
        "timeout": job.timeout,
        "idempotency_key": job.idempotency_key,
        "result": job.result,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "lease_expires_at": job.lease_expires_at,
        "progress": job.progress,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(message, name, value)
    if job.error is not None:
        message.error.CopyFrom(error_to_pb(job.error))
    return message


def error_to_pb(error: JobError) -> model_pb2.JobError:
    """A job's error on the wire."""
    return model_pb2.JobError(
        type=error.type,
        message=error.message,
        traceback=error.traceback,
        retryable=error.retryable,
    )


def error_from_pb(message: model_pb2.JobError) -> JobError:
    """A worker's report of a failed attempt."""
    return JobError(
        type=message.type or "Error",
        message=message.message,
        traceback=message.traceback,
        retryable=message.retryable,
    )


def _backoff_from_pb(message: model_pb2.Backoff) -> RetryPolicy:
    default = RetryPolicy()
    if message.kind not in ("fixed", "exponential"):
        raise InvalidArgument("backoff.kind", f"unknown kind {message.kind!r}")

    def given(name: str, unset: float) -> float:
        # presence, not truth: a base or cap of 0 (retry at once) read as unset became 1 s / 300 s
        value: float = getattr(message, name)
        return value if message.HasField(name) else unset

    return RetryPolicy(
        kind="fixed" if message.kind == "fixed" else "exponential",
        base=given("base", default.base),
        factor=given("factor", default.factor),
        cap=given("cap", default.cap),
        jitter=given("jitter", 0.0),
    )


def payload_from_pb(payload: bytes, content_type: str) -> tuple[bytes, str]:
    """A payload and its content type from the wire: proto3 cannot tell an empty payload from
    none, and none means JSON's `null` (a call without arguments); an empty payload of
    another type stays empty.
    """
    content_type = content_type or "application/json"
    if not payload and content_type == "application/json":
        return b"null", content_type
    return payload, content_type


def enqueue_from_pb(message: jobs_pb2.EnqueueRequest) -> EnqueueRequest:
    """An enqueue request from the wire; unset options stay unset (the queue's policy)."""
    has = message.HasField
    payload, content_type = payload_from_pb(message.payload, message.content_type)
    return EnqueueRequest(
        task=message.task,
        payload=payload,
        namespace=namespace(message.namespace),
        queue=message.queue or DEFAULT_QUEUE,
        content_type=content_type,
        priority=message.priority,
        delay=message.delay if has("delay") else None,
        run_at=message.run_at if has("run_at") else None,
        max_attempts=message.max_attempts if has("max_attempts") else None,
        backoff=_backoff_from_pb(message.backoff) if has("backoff") else None,
        timeout=message.timeout if has("timeout") else None,
        idempotency_key=message.idempotency_key if has("idempotency_key") else None,
        dedupe_window=message.dedupe_window,
        tags=tuple(tags) if (tags := message.tags) else (),
        parent_id=message.parent_id or None,
    )


def lease_from_pb(job_id: str, token: str) -> LeaseRef:
    """A lease named on the wire; both parts are required."""
    if not job_id:
        raise InvalidArgument("job_id", "must not be empty")
    if not token:
        raise InvalidArgument("token", "must not be empty")
    return LeaseRef(job_id=job_id, token=token)


def leases_from_pb(leases: Sequence[model_pb2.Lease]) -> list[LeaseRef]:
    """Leases named on the wire."""
    return [lease_from_pb(lease.job_id, lease.token) for lease in leases]


def assignments_to_pb(jobs: Sequence[Job]) -> workers_pb2.ServerMessage:
    """Leased jobs as one stream message to their worker.

    Filled in place: nesting built messages (`Assignments(assignments=[...])`) copies each job
    once per level, about a third of the encoding's cost.
    """
    message = workers_pb2.ServerMessage()
    add = message.assignments.assignments.add
    for job in jobs:
        add(token=job.lease_token or "").job.CopyFrom(job_to_pb(job))
    return message


def assignments_within(
    jobs: Sequence[Job], limit: int
) -> tuple[list[tuple[workers_pb2.ServerMessage, int]], list[tuple[Job, int]]]:
    """Leased jobs as stream messages of at most `limit` bytes each, with their sizes; and the
    jobs too large to travel even alone, with theirs.

    A batch that fits is one message, measured once; one too large is split in order. A job
    alone always fits a server's limit unless it is barely above `limits.max_payload_bytes`
    (the job's last error and other fields travel with its payload).
    """
    budget = limit - MESSAGE_ROOM
    message = assignments_to_pb(jobs)
    size = message.ByteSize()
    if size <= budget:
        return [(message, size)], []
    parts: list[list[Job]] = [[]]
    part_size = 0
    too_large: list[tuple[Job, int]] = []
    for job, assignment in zip(jobs, message.assignments.assignments, strict=True):
        item = assignment.ByteSize() + _ELEMENT
        if item > budget:
            too_large.append((job, item))
            continue
        if parts[-1] and part_size + item > budget:
            parts.append([])
            part_size = 0
        parts[-1].append(job)
        part_size += item
    messages = [assignments_to_pb(part) for part in parts if part]
    return [(part, part.ByteSize()) for part in messages], too_large


def too_large_error(size: int, limit: int) -> JobError:
    """The failure of a job that no message within the server's limit can carry."""
    return JobError(
        "MessageTooLarge",
        f"the job takes {size} B in a message to a worker, more than this server's "
        f"server.max_message_bytes ({limit} B) allows",
        retryable=False,
    )


def fitting(messages: Sequence[Message], limit: int) -> int:
    """How many of `messages`, from the first, fit together in a repeated field of one message
    of at most `limit` bytes; at least one (a message too large alone fails its call).
    """
    budget, total = limit - MESSAGE_ROOM, 0
    for count, message in enumerate(messages):
        total += message.ByteSize() + _ELEMENT
        if total > budget:
            return max(count, 1)
    return len(messages)


def acks_to_pb(jobs: Sequence[Job]) -> workers_pb2.ServerMessage:
    """Outcomes recorded, as one stream message (filled in place, as `assignments_to_pb`)."""
    message = workers_pb2.ServerMessage()
    add = message.acks.acks.add
    for job in jobs:
        add(job_id=job.id, state=_STATES[job.state])
    return message


def worker_to_pb(worker: WorkerInfo, now: float) -> model_pb2.Worker:
    """A membership record on the wire (its state as `QueueService.list_workers` shows it)."""
    return model_pb2.Worker(
        id=worker.id,
        namespace=worker.namespace,
        queues=worker.queues,
        tasks=worker.tasks,
        concurrency=worker.concurrency,
        language=worker.language,
        host=worker.host,
        pid=worker.pid,
        connected_at=worker.connected_at,
        last_heartbeat=worker.last_heartbeat,
        heartbeat_age=max(now - worker.last_heartbeat, 0.0),
        state=_WORKER_STATES[worker.state],
        running=worker.running,
    )


def counts_to_pb(counts: Mapping[JobState, int]) -> queues_pb2.StateCounts:
    """Counts by state, keyed by state name."""
    return queues_pb2.StateCounts(counts={state.value: n for state, n in counts.items()})


def event_to_pb(event: Event, dropped: int = 0) -> events_pb2.Event:
    """A lifecycle event on the wire."""
    return events_pb2.Event(
        kind=event.kind,
        namespace=event.namespace,
        at=event.at,
        job_id=event.job_id or "",
        queue=event.queue or "",
        task=event.task or "",
        state=event.state or "",
        worker_id=event.worker_id or "",
        attempt=event.attempt or 0,
        data=event.data,
        dropped=dropped,
    )
