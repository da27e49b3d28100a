from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shoal.config._build import _DURATION, _UNITS, _unknown
from shoal.core.errors import ConfigError, InvalidArgument
from shoal.core.model import DEFAULT_NAMESPACE, DEFAULT_QUEUE
from shoal.core.schedules import ScheduleInput
from shoal.core.validation import Limits
from shoal.scheduler.model import build_schedule


@dataclass(frozen=True, slots=True)
class SchedulesConfig:
    """The schedules `[[schedules]]` declares; the server puts each at every start."""

    declared: tuple[ScheduleInput, ...] = ()


#: The keys of a `[[schedules]]` table.
KEYS = (
    "id",
    "namespace",
    "queue",
    "task",
    "every",
    "cron",
    "at",
    "timezone",
    "args",
    "kwargs",
    "payload",
    "content_type",
    "priority",
    "max_attempts",
    "timeout",
    "tags",
    "overlap",
    "catch_up",
    "catch_up_limit",
    "jitter",
    "start",
    "end",
    "paused",
)
_KINDS = {str: "text", int: "an integer", bool: "true or false", list: "an array", dict: "a table"}
#: `ScheduleInput` field names as the file spells them (errors name the file's key).
_FILE_NAMES = {
    "every_ms": "every",
    "jitter_ms": "jitter",
    "start_at": "start",
    "end_at": "end",
    "trigger": "every/cron/at",
}


def _seconds(where: str, key: str, value: object) -> float:
    """A duration: a number of seconds, or text with a unit (`250ms`, `1s`, `5m`, `1h`)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ConfigError(f"{where}.{key}: {value!r} is not a duration such as 250ms or 5s")
        return float(match.group(1)) * _UNITS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: must be a duration such as 250ms or 5s")
    return float(value)


def _instant(where: str, key: str, value: object) -> float:
    """A POSIX time: a TOML date-time with an offset, ISO 8601 text with one, or a number."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{where}.{key}: {value!r} is not an ISO 8601 date-time") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{where}.{key}: give the date-time's offset (Z or +01:00)")
        return value.timestamp()
    if isinstance(value, date) or isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}: must be a date-time with an offset or a POSIX time")
    return float(value)


def _typed(where: str, item: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    if key not in item:
        return default
    value = item[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: must be {_KINDS.get(kind, kind.__name__)}")
    return value


def _payload(where: str, item: Mapping[str, Any]) -> bytes:
    """`args`/`kwargs` as the SDK's payload, or `payload` as given (text)."""
    if "payload" in item:
        if "args" in item or "kwargs" in item:
            raise ConfigError(f"{where}.payload: give either payload or args/kwargs")
        text: str = _typed(where, item, "payload", str, "")
        return text.encode()
    args = _typed(where, item, "args", list, [])
    kwargs = _typed(where, item, "kwargs", dict, {})
    if "args" not in item and "kwargs" not in item:
        return b"null"
    return json.dumps({"args": args, "kwargs": kwargs}, default=str).encode()


def _input(where: str, item: Mapping[str, Any]) -> ScheduleInput:
    unknown = [key for key in item if key not in KEYS]
    if unknown:
        raise _unknown("key", f"{where}.{unknown[0]}", [f"{where}.{k}" for k in KEYS], "the file")
    if "id" not in item or "task" not in item:
        raise ConfigError(f"{where}: id and task are required")
    every = item.get("every")
    timeout = item.get("timeout")
    return ScheduleInput(
        task=_typed(where, item, "task", str, ""),
        namespace=_typed(where, item, "namespace", str, DEFAULT_NAMESPACE),
        queue=_typed(where, item, "queue", str, DEFAULT_QUEUE),
        id=_typed(where, item, "id", str, ""),
        every_ms=None if every is None else round(_seconds(where, "every", every) * 1000),
        cron=_typed(where, item, "cron", str, None),
        timezone=_typed(where, item, "timezone", str, "UTC"),
        at=None if "at" not in item else _instant(where, "at", item["at"]),
        payload=_payload(where, item),
        content_type=_typed(where, item, "content_type", str, "application/json"),
        priority=_typed(where, item, "priority", int, 0),
        max_attempts=_typed(where, item, "max_attempts", int, None),
        timeout=None if timeout is None else _seconds(where, "timeout", timeout),
        tags=tuple(_typed(where, item, "tags", list, [])),
        overlap=_typed(where, item, "overlap", str, "allow"),
        catch_up=_typed(where, item, "catch_up", str, "one"),
        catch_up_limit=_typed(where, item, "catch_up_limit", int, 100),
        jitter_ms=round(_seconds(where, "jitter", item.get("jitter", 0)) * 1000),
        start_at=None if "start" not in item else _instant(where, "start", item["start"]),
        end_at=None if "end" not in item else _instant(where, "end", item["end"]),
        paused=_typed(where, item, "paused", bool, False),
    )


def parse_schedules(data: object, limits: Limits) -> SchedulesConfig:
    """`[[schedules]]` tables into checked `ScheduleInput`s (applied with `put` at start).

    Each is validated as the scheduler will store it, so a bad cron expression, interval or
    time zone stops the server from starting with a `ConfigError` naming the schedule and key.
    """
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise ConfigError("schedules: must be an array of tables ([[schedules]])")
    schedules: list[ScheduleInput] = []
    for index, item in enumerate(data):
        where = f"schedules[{index}]"
        schedule = _input(where, item)
        try:
            build_schedule(schedule, schedule.id or "", time.time(), limits)
        except InvalidArgument as exc:
            key = _FILE_NAMES.get(exc.field, exc.field)
            message = exc.message.partition(": ")[2] or exc.message
            raise ConfigError(f"{where} ({schedule.id}).{key}: {message}") from exc
        schedules.append(schedule)
    seen: set[tuple[str, str | None]] = set()
    for schedule in schedules:
        if (schedule.namespace, schedule.id) in seen:
            raise ConfigError(f"schedules: id {schedule.id!r} is declared twice")
        seen.add((schedule.namespace, schedule.id))
    return SchedulesConfig(tuple(schedules))
