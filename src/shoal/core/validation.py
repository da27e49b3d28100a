"""Checks of every input that crosses the service boundary; each failure names its field."""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoal.core._records import fast_init
from shoal.core.errors import InvalidArgument
from shoal.core.model import DEFAULT_NAMESPACE, DEFAULT_QUEUE, JobError, JobQuery, JobState
from shoal.core.retry import MAX_RETRY_DELAY, RetryPolicy

__all__ = [
    "MAX_INT32",
    "MAX_MESSAGE_BYTES",
    "EnqueueRequest",
    "Limits",
    "check_enqueue",
    "check_name",
    "check_query",
    "parse_state",
]

_MAX_NAME = 200
_MAX_TAGS = 32
MAX_INT32 = 2**31 - 1

#: The largest message a server takes or sends (its default `server.max_message_bytes`); the
#: SDK's clients size their channels and their workers' outcomes to it.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on inputs, so a single request cannot exhaust the server."""

    max_payload_bytes: int = 1024 * 1024
    max_batch: int = 10_000
    max_page: int = 1000
    max_attempts: int = 1000

    def __post_init__(self) -> None:
        # A bound of 0 or below refused every request (or, for `max_batch`, let no job go to
        # a worker); one past 32 bits cannot be said on the wire (a job's `max_attempts` is an
        # int32, a Welcome's credits a uint32) and broke the streams that carry it.
        for field_name in ("max_payload_bytes", "max_batch", "max_page", "max_attempts"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT32:
                raise InvalidArgument(field_name, f"must be an integer from 1 to {MAX_INT32}")


@fast_init
@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    """One job to enqueue. Unset options take the queue's policy (`QueuePolicy`)."""

    task: str
    payload: bytes = b"null"
    namespace: str = DEFAULT_NAMESPACE
    queue: str = DEFAULT_QUEUE
    content_type: str = "application/json"
    priority: int = 0
    #: Seconds from now before the job may run; exclusive with `run_at`.
    delay: float | None = None
    #: POSIX time before which the job may not run; exclusive with `delay`.
    run_at: float | None = None
    max_attempts: int | None = None
    backoff: RetryPolicy | None = None
    #: Seconds an attempt may run before the worker stops it.
    timeout: float | None = None
    idempotency_key: str | None = None
    #: Also deduplicate against finished jobs created less than this many seconds ago.
    dedupe_window: float = 0.0
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    schedule_id: str | None = None


#: Names that passed `check_name`: a few queues and tasks recur in every request, and checking
#: each character of three names was a tenth of a bulk enqueue's time on the event loop.
_accepted_names: set[str] = set()
_MAX_ACCEPTED = 4096


def check_name(field_name: str, value: object) -> str:
    """A namespace, queue or task name: 1 to 200 printable characters, no white space."""
    if type(value) is str and value in _accepted_names:
        return value
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field_name, "must be a non-empty string")
    if len(value) > _MAX_NAME:
        raise InvalidArgument(field_name, f"must be at most {_MAX_NAME} characters")
    if not value.isprintable() or any(ch.isspace() for ch in value):
        raise InvalidArgument(field_name, "must not contain white space or control characters")
    if len(_accepted_names) >= _MAX_ACCEPTED:
        _accepted_names.clear()
    _accepted_names.add(value)
    return value


def _check_number(field_name: str, value: float, *, positive: bool = False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidArgument(field_name, "must be a finite number")
    if value < 0 or (positive and value == 0):
        raise InvalidArgument(
            field_name, "must be positive" if positive else "must not be negative"
        )


#: The longest lease a worker may ask for (a day): an infinite or NaN one left a job leased for
#: ever (`MAX_RETRY_DELAY` bounds retry delays the same way).
MAX_LEASE_TTL = 86_400.0


def check_lease_ttl(value: float | None) -> None:
    """A lease length a worker asks for: None (the service's) or 0 < seconds <= a day."""
    if value is not None and not 0 < value <= MAX_LEASE_TTL:  # NaN fails both comparisons
        raise InvalidArgument("lease_ttl", f"must be above 0 and at most {MAX_LEASE_TTL:g} seconds")


def check_retry_delay(value: float | None) -> None:
    """A worker's own retry delay: None (the job's policy) or 0 <= seconds <= 1e9."""
    if value is not None and not 0 <= value <= MAX_RETRY_DELAY:
        raise InvalidArgument("retry_delay", f"must be from 0 to {MAX_RETRY_DELAY:g} seconds")


def check_enqueue(request: EnqueueRequest, limits: Limits) -> None:
    """Raise `InvalidArgument` for the first thing wrong with `request`."""
    check_name("namespace", request.namespace)
    check_name("queue", request.queue)
    check_name("task", request.task)
    if not isinstance(request.payload, bytes):
        raise InvalidArgument("payload", "must be bytes")
    if len(request.payload) > limits.max_payload_bytes:
        raise InvalidArgument(
            "payload",
            f"is {len(request.payload)} bytes; the maximum is {limits.max_payload_bytes}",
        )
    priority = request.priority
    # a bool is an int to Python, and a mistake here (True would be priority 1)
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > MAX_INT32:
        raise InvalidArgument("priority", "must be an integer within 32 bits")
    if request.delay is not None and request.run_at is not None:
        raise InvalidArgument("delay", "give either delay or run_at, not both")
    if request.delay is not None:
        _check_number("delay", request.delay)
    if request.run_at is not None:
        _check_number("run_at", request.run_at)
    if request.max_attempts is not None and not (
        isinstance(request.max_attempts, int) and 1 <= request.max_attempts <= limits.max_attempts
    ):
        raise InvalidArgument("max_attempts", f"must be between 1 and {limits.max_attempts}")
    if request.timeout is not None:
        _check_number("timeout", request.timeout, positive=True)
    _check_number("dedupe_window", request.dedupe_window)
    if request.idempotency_key is not None:
        if not 0 < len(request.idempotency_key) <= 255:
            raise InvalidArgument("idempotency_key", "must be 1 to 255 characters")
        check_text("idempotency_key", request.idempotency_key)
    if request.content_type != "application/json":
        if not isinstance(request.content_type, str) or not 0 < len(request.content_type) <= 255:
            raise InvalidArgument("content_type", "must be 1 to 255 characters")
        check_text("content_type", request.content_type)
    for field_name in ("parent_id", "schedule_id"):
        if (value := getattr(request, field_name)) is not None:
            check_text(field_name, value)
    if len(request.tags) > _MAX_TAGS:
        raise InvalidArgument("tags", f"at most {_MAX_TAGS} tags")
    for tag in request.tags:
        check_name("tags", tag)


def check_text(field_name: str, value: str) -> None:
    """Text every store can keep: a lone surrogate (what a JSON escape of one half of a
    surrogate pair decodes to) has no UTF-8 form, and reached the store as a raw
    `UnicodeEncodeError`; PostgreSQL's text cannot hold NUL (a storage error there, stored
    by the other stores).
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(field_name, "must be valid Unicode (no lone surrogates)") from None
    if "\x00" in value:
        raise InvalidArgument(field_name, "must not contain NUL characters")


def check_job_error(error: JobError) -> None:
    """The error a worker reports for a failed attempt."""
    for field_name in ("type", "message", "traceback"):
        check_text(f"error.{field_name}", getattr(error, field_name))


def check_query(query: JobQuery, limits: Limits) -> None:
    """Raise `InvalidArgument` for a query that cannot be served."""
    check_name("namespace", query.namespace)
    if query.queue is not None:
        check_name("queue", query.queue)
    if query.task is not None:
        check_name("task", query.task)
    if not isinstance(query.state, JobState | None):
        raise InvalidArgument("state", f"unknown state {query.state!r}")
    if not 1 <= query.limit <= limits.max_page:
        raise InvalidArgument("limit", f"must be between 1 and {limits.max_page}")


def parse_state(text: str) -> JobState:
    """A state from its name, or `InvalidArgument` naming the choices."""
    try:
        return JobState(text)
    except ValueError:
        choices = ", ".join(state.value for state in JobState)
        raise InvalidArgument("state", f"unknown state {text!r}; one of {choices}") from None
