"""Schedules: the definition a user gives (`ScheduleInput`), the validated `Schedule`, and its
JSON form in `ScheduleRecord.spec` (the store keeps the text; only this module reads it).

A schedule's *cursor* is the last slot it handled (fired, or skipped by its overlap policy);
`since_ms` is the time before which no slot counts as missed (creation, a trigger change, a
resume), so neither a pause nor an edit ever causes a catch-up burst.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from shoal.core.errors import InvalidArgument, StorageError
from shoal.core.ports import ScheduleRecord
from shoal.core.schedules import CatchUp, Overlap, ScheduleInput
from shoal.core.validation import EnqueueRequest, Limits, check_enqueue, check_name
from shoal.scheduler.triggers import (
    CronTrigger,
    IntervalTrigger,
    OnceTrigger,
    Trigger,
    cron_trigger,
    interval_trigger,
    once_trigger,
)

__all__ = [
    "CatchUp",
    "Overlap",
    "Schedule",
    "ScheduleInput",
    "build_schedule",
    "decode_schedule",
    "encode_schedule",
]

_SPEC_VERSION = 1
#: Catch-up fires go in one batch, which the service bounds (`Limits.max_batch`).
_MAX_CATCH_UP = 10_000
_MAX_JITTER_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated schedule with its firing state."""

    id: str
    namespace: str
    queue: str
    task: str
    trigger: Trigger
    created_at: float
    since_ms: int
    payload: bytes = b"null"
    content_type: str = "application/json"
    priority: int = 0
    max_attempts: int | None = None
    timeout: float | None = None
    tags: tuple[str, ...] = ()
    overlap: Overlap = Overlap.ALLOW
    catch_up: CatchUp = CatchUp.ONE
    catch_up_limit: int = 100
    jitter_ms: int = 0
    start_ms: int | None = None
    end_ms: int | None = None
    paused: bool = False
    #: The last slot handled (fired or skipped), in ms.
    cursor_ms: int | None = None
    #: The last slot that enqueued a job, in ms.
    last_fire_ms: int | None = None
    last_job_id: str | None = None
    #: When the next fire is due (slot plus jitter), in ms; None when paused or finished.
    next_due_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def next_slot(self, after: int) -> int | None:
        """The first slot strictly after `after` within the schedule's start and end."""
        if self.start_ms is not None:
            after = max(after, self.start_ms - 1)
        slot = self.trigger.next_fire(after)
        if slot is None or (self.end_ms is not None and slot > self.end_ms):
            return None
        return slot

    def resume_point(self) -> int:
        """The time after which slots are still to be handled: the cursor or `since_ms`."""
        return max(self.cursor_ms if self.cursor_ms is not None else self.since_ms, self.since_ms)

    def due_ms(self, slot: int) -> int:
        """When `slot` fires: the slot plus its jitter, the same in every process."""
        if self.jitter_ms <= 0:
            return slot
        digest = hashlib.blake2b(f"{self.namespace}/{self.id}/{slot}".encode(), digest_size=8)
        return slot + int.from_bytes(digest.digest(), "big") % (self.jitter_ms + 1)

    def idempotency_key(self, slot: int) -> str:
        """The key that makes a slot enqueue one job whatever restarts or replicas."""
        return f"schedule:{self.id}:{slot}"

    def enqueue_request(
        self, key: str, dedupe_window: float, run_at: float | None = None
    ) -> EnqueueRequest:
        """The job a fire enqueues (to run at once unless `run_at` is given)."""
        return EnqueueRequest(
            task=self.task,
            payload=self.payload,
            namespace=self.namespace,
            queue=self.queue,
            content_type=self.content_type,
            priority=self.priority,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            idempotency_key=key,
            dedupe_window=dedupe_window,
            tags=self.tags,
            schedule_id=self.id,
            run_at=run_at,
        )


def _ms(value: float) -> int:
    return math.floor(value * 1000 + 0.5)


def _choice(field_name: str, value: object, kind: type[StrEnum]) -> Any:
    try:
        return kind(str(value))
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise InvalidArgument(field_name, f"unknown value {value!r}; one of {choices}") from None


def _time(field_name: str, value: float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(field_name, "must be a finite POSIX time")
    if not 0 <= value < 253_402_300_000:
        raise InvalidArgument(field_name, "must be between 1970 and 9999")
    return _ms(value)


def _trigger(data: ScheduleInput, start_ms: int | None, now_ms: int) -> Trigger:
    given = [name for name in ("every_ms", "cron", "at") if getattr(data, name) is not None]
    if len(given) != 1:
        raise InvalidArgument("trigger", "give exactly one of every_ms, cron or at")
    if data.cron is None and data.timezone != "UTC":  # it would be silently ignored
        raise InvalidArgument("timezone", "only a cron schedule has a time zone")
    if data.every_ms is not None:
        every = interval_trigger(data.every_ms, 0)
        return IntervalTrigger(
            every.every_ms, start_ms if start_ms is not None else now_ms + every.every_ms
        )
    if data.cron is not None:
        return cron_trigger(data.cron, data.timezone)
    at_ms = _time("at", data.at)
    assert at_ms is not None
    return once_trigger(at_ms)


def _within(at_ms: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or at_ms >= start_ms) and (end_ms is None or at_ms <= end_ms)


def build_schedule(data: ScheduleInput, schedule_id: str, now: float, limits: Limits) -> Schedule:
    """Validate `data` into a new `Schedule`; `InvalidArgument` names the first bad field."""
    check_name("id", schedule_id)
    check_enqueue(
        EnqueueRequest(
            task=data.task,
            payload=data.payload,
            namespace=data.namespace,
            queue=data.queue,
            content_type=data.content_type,
            priority=data.priority,
            max_attempts=data.max_attempts,
            timeout=data.timeout,
            tags=tuple(data.tags),
        ),
        limits,
    )
    now_ms = _ms(now)
    start_ms, end_ms = _time("start_at", data.start_at), _time("end_at", data.end_at)
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise InvalidArgument("end_at", "must not be before start_at")
    trigger = _trigger(data, start_ms, now_ms)
    if isinstance(trigger, OnceTrigger) and not _within(trigger.at_ms, start_ms, end_ms):
        raise InvalidArgument("at", "is outside start_at..end_at: the schedule would never fire")
    limit = data.catch_up_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_CATCH_UP:
        raise InvalidArgument("catch_up_limit", f"must be between 1 and {_MAX_CATCH_UP}")
    jitter = data.jitter_ms
    if isinstance(jitter, bool) or not isinstance(jitter, int) or not 0 <= jitter <= _MAX_JITTER_MS:
        raise InvalidArgument("jitter_ms", "must be a whole number of ms between 0 and one day")
    return Schedule(
        id=schedule_id,
        namespace=data.namespace,
        queue=data.queue,
        task=data.task,
        trigger=trigger,
        created_at=now,
        # A one-shot already due counts as missed, so its catch-up policy fires it at once.
        since_ms=min(now_ms, trigger.at_ms - 1) if isinstance(trigger, OnceTrigger) else now_ms,
        payload=data.payload,
        content_type=data.content_type,
        priority=data.priority,
        max_attempts=data.max_attempts,
        timeout=data.timeout,
        tags=tuple(data.tags),
        overlap=_choice("overlap", data.overlap, Overlap),
        catch_up=_choice("catch_up", data.catch_up, CatchUp),
        catch_up_limit=limit,
        jitter_ms=jitter,
        start_ms=start_ms,
        end_ms=end_ms,
        paused=bool(data.paused),
    )


# --- the JSON spec ------------------------------------------------------------------------------


def _encode_trigger(trigger: Trigger) -> dict[str, Any]:
    if isinstance(trigger, IntervalTrigger):
        return {"kind": "interval", "every_ms": trigger.every_ms, "anchor_ms": trigger.anchor_ms}
    if isinstance(trigger, CronTrigger):
        return {"kind": "cron", "expression": trigger.expression, "timezone": trigger.timezone}
    return {"kind": "once", "at_ms": trigger.at_ms}


@lru_cache(maxsize=1024)
def _checked_cron(expression: str, timezone: str) -> CronTrigger:
    return cron_trigger(expression, timezone)


def _decode_trigger(data: dict[str, Any]) -> Trigger:
    kind = data["kind"]
    if kind == "interval":
        every = int(data["every_ms"])
        if every < 1:
            raise ValueError(f"interval of {every} ms")
        return IntervalTrigger(every, int(data["anchor_ms"]))
    if kind == "cron":
        # Checked again (cached): a zone that left the tz database must not crash a runner.
        return _checked_cron(str(data["expression"]), str(data["timezone"]))
    if kind == "once":
        return OnceTrigger(int(data["at_ms"]))
    raise ValueError(f"unknown trigger kind {kind!r}")


def encode_schedule(schedule: Schedule) -> ScheduleRecord:
    """The store's record of a schedule: the definition and firing state as JSON `spec`."""
    spec = {
        "version": _SPEC_VERSION,
        "queue": schedule.queue,
        "task": schedule.task,
        "trigger": _encode_trigger(schedule.trigger),
        "payload": base64.b64encode(schedule.payload).decode("ascii"),
        "content_type": schedule.content_type,
        "priority": schedule.priority,
        "max_attempts": schedule.max_attempts,
        "timeout": schedule.timeout,
        "tags": list(schedule.tags),
        "overlap": schedule.overlap.value,
        "catch_up": schedule.catch_up.value,
        "catch_up_limit": schedule.catch_up_limit,
        "jitter_ms": schedule.jitter_ms,
        "start_ms": schedule.start_ms,
        "end_ms": schedule.end_ms,
        "since_ms": schedule.since_ms,
        "cursor_ms": schedule.cursor_ms,
        "last_job_id": schedule.last_job_id,
        "next_due_ms": schedule.next_due_ms,
        **schedule.extra,
    }
    return ScheduleRecord(
        namespace=schedule.namespace,
        id=schedule.id,
        spec=json.dumps(spec, separators=(",", ":"), sort_keys=True),
        paused=schedule.paused,
        next_fire_at=None if schedule.next_due_ms is None else schedule.next_due_ms / 1000,
        last_fire_at=None if schedule.last_fire_ms is None else schedule.last_fire_ms / 1000,
        created_at=schedule.created_at,
    )


_KNOWN = frozenset(
    "version queue task trigger payload content_type priority max_attempts timeout tags overlap "
    "catch_up catch_up_limit jitter_ms start_ms end_ms since_ms cursor_ms last_job_id "
    "next_due_ms".split()
)


def decode_schedule(record: ScheduleRecord) -> Schedule:
    """The schedule kept in `record`; `StorageError` if its spec cannot be read."""
    try:
        spec = json.loads(record.spec)
        return Schedule(
            id=record.id,
            namespace=record.namespace,
            queue=spec["queue"],
            task=spec["task"],
            trigger=_decode_trigger(spec["trigger"]),
            created_at=record.created_at,
            since_ms=int(spec["since_ms"]),
            payload=base64.b64decode(spec["payload"]),
            content_type=spec["content_type"],
            priority=int(spec["priority"]),
            max_attempts=spec["max_attempts"],
            timeout=spec["timeout"],
            tags=tuple(spec["tags"]),
            overlap=Overlap(spec["overlap"]),
            catch_up=CatchUp(spec["catch_up"]),
            catch_up_limit=int(spec["catch_up_limit"]),
            jitter_ms=int(spec["jitter_ms"]),
            start_ms=spec["start_ms"],
            end_ms=spec["end_ms"],
            paused=record.paused,
            cursor_ms=spec["cursor_ms"],
            last_fire_ms=None if record.last_fire_at is None else _ms(record.last_fire_at),
            last_job_id=spec["last_job_id"],
            next_due_ms=spec.get("next_due_ms"),
            # Keys written by a newer version survive a round trip through this one.
            extra={key: value for key, value in spec.items() if key not in _KNOWN},
        )
    except (KeyError, TypeError, ValueError, InvalidArgument) as exc:
        raise StorageError(f"schedule {record.id} has an unreadable spec: {exc}") from exc
