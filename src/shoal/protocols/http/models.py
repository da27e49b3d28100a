"""The JSON shapes of the HTTP API (pydantic), and their conversions from and to core objects.

Payloads and results are bytes in core. Over HTTP a JSON payload travels as JSON (`payload`)
and anything else as base64 (`payload_base64`), so a curl user never has to encode JSON twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shoal.core.errors import InvalidArgument
from shoal.core.model import Job, JobState, QueueInfo, QueueStats, WorkerInfo
from shoal.core.retry import RetryPolicy
from shoal.core.validation import EnqueueRequest

__all__ = [
    "JSON_CONTENT_TYPE",
    "BackoffIn",
    "DeletedOut",
    "EnqueueIn",
    "EnqueueManyIn",
    "EnqueueManyOut",
    "EnqueueOut",
    "ErrorBody",
    "ErrorDetail",
    "JobOut",
    "JobPageOut",
    "NamespacesOut",
    "QueueOut",
    "QueuesOut",
    "StatsOut",
    "WorkerOut",
    "WorkersOut",
    "decode_body",
    "encode_body",
    "job_out",
    "queue_out",
    "stats_out",
    "worker_out",
]

#: The content type whose bodies travel as JSON rather than base64.
JSON_CONTENT_TYPE = "application/json"

_NAME = Field(min_length=1, max_length=200)


class _In(BaseModel):
    # Unknown fields are refused (422 naming them), never silently dropped.
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    """What went wrong: the same `code` as gRPC and TCP, a message, and the field if any."""

    code: str = Field(examples=["not_found"])
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class BackoffIn(_In):
    """A retry policy: `fixed` waits `base` seconds, `exponential` `base * factor**(n-1)`."""

    kind: Literal["fixed", "exponential"] = "exponential"
    base: float = Field(1.0, ge=0, le=1e9)
    factor: float = Field(2.0, ge=1, le=1e3)
    cap: float = Field(300.0, ge=0, le=1e9)
    jitter: float = Field(0.1, ge=0, le=1)


class EnqueueIn(_In):
    """One job to enqueue; unset options take the queue's defaults."""

    task: str = _NAME
    queue: str = Field("default", min_length=1, max_length=200)
    payload: Any = Field(None, description="The payload as JSON (content type application/json).")
    payload_base64: str | None = Field(
        None,
        description="The payload as base64, for any other content type; exclusive with payload.",
    )
    content_type: str | None = Field(None, min_length=1, max_length=200)
    priority: int = Field(0, ge=-(2**31) + 1, le=2**31 - 1)
    delay: float | None = Field(None, ge=0, le=1e10, description="Seconds before it may run.")
    run_at: float | None = Field(None, ge=0, le=1e11, description="POSIX time it may run at.")
    max_attempts: int | None = Field(None, ge=1, le=1000)
    backoff: BackoffIn | None = None
    timeout: float | None = Field(None, gt=0, le=1e9)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    dedupe_window: float = Field(0.0, ge=0, le=1e10)
    tags: list[str] = Field(default_factory=list, max_length=32)
    parent_id: str | None = Field(None, max_length=200)

    def to_request(self, namespace: str, field_prefix: str = "") -> EnqueueRequest:
        """The service's request; `InvalidArgument` for a payload that cannot be read."""
        payload, content_type = decode_body(
            self.payload,
            self.payload_base64,
            self.content_type,
            field=f"{field_prefix}payload_base64",
            given="payload" in self.model_fields_set,
        )
        backoff = None
        if self.backoff is not None:
            backoff = RetryPolicy(**self.backoff.model_dump())
        return EnqueueRequest(
            task=self.task,
            payload=payload,
            namespace=namespace,
            queue=self.queue,
            content_type=content_type,
            priority=self.priority,
            delay=self.delay,
            run_at=self.run_at,
            max_attempts=self.max_attempts,
            backoff=backoff,
            timeout=self.timeout,
            idempotency_key=self.idempotency_key,
            dedupe_window=self.dedupe_window,
            tags=tuple(self.tags),
            parent_id=self.parent_id,
        )


class EnqueueManyIn(_In):
    """Several jobs, stored all or none."""

    # at most the server's limits.max_batch (10,000 by default), which the service checks:
    # a bound here ignored the configured one (the request body limit bounds the list)
    jobs: list[EnqueueIn] = Field(min_length=1, description="At most `limits.max_batch` jobs.")


class ErrorOut(BaseModel):
    """Why the last attempt failed."""

    type: str
    message: str
    traceback: str
    retryable: bool


class JobOut(BaseModel):
    """A job and everything shoal knows about it (times are POSIX seconds)."""

    id: str
    namespace: str
    queue: str
    task: str
    state: JobState
    content_type: str
    payload: Any = Field(None, description="The payload when its content type is JSON.")
    payload_base64: str | None = Field(None, description="The payload otherwise.")
    result: Any = Field(None, description="The result when it is JSON.")
    result_base64: str | None = Field(None, description="The result otherwise.")
    error: ErrorOut | None = None
    priority: int
    attempt: int
    max_attempts: int
    backoff: str
    timeout: float | None
    idempotency_key: str | None
    tags: list[str]
    created_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    lease_expires_at: float | None
    cancel_requested: bool
    progress: float | None
    parent_id: str | None
    schedule_id: str | None
    lease_token: str | None = Field(
        None, description="Only in answers to a worker's fetch: the token its calls must carry."
    )


class EnqueueOut(BaseModel):
    """The stored job; `created` is false when an idempotency key matched an existing one."""

    job: JobOut
    created: bool


class EnqueueManyOut(BaseModel):
    """One result per job sent, in order."""

    results: list[EnqueueOut]


class JobPageOut(BaseModel):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    jobs: list[JobOut]
    next_cursor: str | None


class QueueOut(BaseModel):
    """A queue with its counts by state."""

    namespace: str
    name: str
    paused: bool
    counts: dict[JobState, int]
    total: int


class QueuesOut(BaseModel):
    """The queues of a namespace."""

    queues: list[QueueOut]


class StatsOut(BaseModel):
    """Counts by state, and by task then state."""

    by_state: dict[JobState, int]
    by_task: dict[str, dict[JobState, int]]
    total: int


class DeletedOut(BaseModel):
    """How many jobs an operation removed."""

    deleted: int


class WorkerOut(BaseModel):
    """A connected worker (times are POSIX seconds)."""

    id: str
    namespace: str
    queues: list[str]
    tasks: list[str]
    state: str
    concurrency: int
    language: str
    host: str
    pid: int
    running: int
    connected_at: float
    last_heartbeat: float
    heartbeat_age: float = Field(description="Seconds since the last heartbeat.")


class WorkersOut(BaseModel):
    """The workers of a namespace (the cluster membership)."""

    workers: list[WorkerOut]


class NamespacesOut(BaseModel):
    """The namespaces known to this server."""

    namespaces: list[str]


def decode_body(
    value: Any, value_base64: str | None, content_type: str | None, *, field: str, given: bool
) -> tuple[bytes, str]:
    """Bytes and content type from the JSON form or the base64 form of a payload or result."""
    if value_base64 is not None:
        if given:
            raise InvalidArgument(field, "give either the JSON form or the base64 form, not both")
        try:
            data = base64.b64decode(value_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(field, "is not valid base64") from None
        return data, content_type or "application/octet-stream"
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidArgument(field.removesuffix("_base64"), "is not valid JSON") from None
    return text.encode(), content_type or JSON_CONTENT_TYPE


def encode_body(data: bytes | None, content_type: str) -> tuple[Any, str | None]:
    """The JSON form of bytes when they are JSON, else None and their base64 form."""
    if data is None:
        return None, None
    if content_type.split(";")[0].strip() == JSON_CONTENT_TYPE:
        try:
            return json.loads(data), None
        except ValueError:
            pass
    return None, base64.b64encode(data).decode()


def job_out(job: Job, *, with_lease: bool = False) -> JobOut:
    """The API shape of a job; the lease token only for the worker that holds it."""
    payload, payload_b64 = encode_body(job.payload, job.content_type)
    # A result carries no content type of its own; it is JSON when it parses as JSON.
    result, result_b64 = encode_body(job.result, JSON_CONTENT_TYPE)
    error = None
    if job.error is not None:
        e = job.error
        error = ErrorOut(
            type=e.type, message=e.message, traceback=e.traceback, retryable=e.retryable
        )
    return JobOut(
        id=job.id,
        namespace=job.namespace,
        queue=job.queue,
        task=job.task,
        state=job.state,
        content_type=job.content_type,
        payload=payload,
        payload_base64=payload_b64,
        result=result,
        result_base64=result_b64,
        error=error,
        priority=job.priority,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        backoff=job.backoff,
        timeout=job.timeout,
        idempotency_key=job.idempotency_key,
        tags=list(job.tags),
        created_at=job.created_at,
        run_at=job.run_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker_id=job.worker_id,
        lease_expires_at=job.lease_expires_at,
        cancel_requested=job.cancel_requested,
        progress=job.progress,
        parent_id=job.parent_id,
        schedule_id=job.schedule_id,
        lease_token=job.lease_token if with_lease else None,
    )


def _counts(counts: Any) -> dict[JobState, int]:
    return {state: int(counts.get(state, 0)) for state in JobState}


def queue_out(queue: QueueInfo) -> QueueOut:
    """The API shape of a queue."""
    counts = _counts(queue.counts)
    return QueueOut(
        namespace=queue.namespace,
        name=queue.name,
        paused=queue.paused,
        counts=counts,
        total=sum(counts.values()),
    )


def stats_out(stats: QueueStats) -> StatsOut:
    """The API shape of queue statistics."""
    return StatsOut(
        by_state=_counts(stats.by_state),
        by_task={task: _counts(counts) for task, counts in sorted(stats.by_task.items())},
        total=stats.total,
    )


def worker_out(worker: WorkerInfo, now: float) -> WorkerOut:
    """The API shape of a worker, with the age of its last heartbeat at `now`."""
    return WorkerOut(
        id=worker.id,
        namespace=worker.namespace,
        queues=list(worker.queues),
        tasks=list(worker.tasks),
        state=worker.state.value,
        concurrency=worker.concurrency,
        language=worker.language,
        host=worker.host,
        pid=worker.pid,
        running=worker.running,
        connected_at=worker.connected_at,
        last_heartbeat=worker.last_heartbeat,
        heartbeat_age=max(now - worker.last_heartbeat, 0.0),
    )
