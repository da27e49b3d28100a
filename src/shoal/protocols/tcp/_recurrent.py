"""RECURRENT_JOB, LIST_RECURRENT_JOBS and DELETE_RECURRENT_JOB, onto shoal's scheduler.

Jobatator read its expressions with robfig/cron's standard parser: exactly 5 fields, the `@`
descriptors, `@every <Go duration>`, and an optional `CRON_TZ=<zone>` prefix. The same forms
are accepted here, with robfig's error messages. A recurrent job is a shoal schedule whose id
is derived from group, queue and job type, so declaring it again updates it (upstream kept
the old expression) and deleting it deletes it (upstream's delete did nothing). The entry
numbers clients see (`OK#1`) are given per process, in order of first sight.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from shoal.core.errors import InvalidArgument, NotFound
from shoal.core.schedules import ScheduleInput, ScheduleView
from shoal.protocols.tcp.commands import Command, ErrorCode
from shoal.protocols.tcp.replies import OK, ErrorReply, JsonReply, OkId, Reply, go_recurrent_job

if TYPE_CHECKING:
    from shoal.protocols.tcp.session import Session

_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0}
_GO_UNITS |= {"m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SCHEDULE_FIELDS = frozenset({"cron", "every_ms", "timezone", "at", "start_at", "end_at"})


class BadCron(Exception):
    """An expression robfig/cron would refuse; the message is robfig's."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (`1h30m`, `10s`, `250ms`); `BadCron` if it is not one."""
    pos, total = 0, 0.0
    body = text[1:] if text[:1] in "+-" else text
    if body in ("0", ""):
        if body == "0":
            return 0.0
        raise BadCron(f'time: invalid duration "{text}"')
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if match is None:
            raise BadCron(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return -total if text.startswith("-") else total


def parse_spec(spec: str) -> tuple[str | None, int | None, str]:
    """(cron, every_ms, timezone) of a Jobatator expression; `BadCron` as robfig says it."""
    if not spec:
        raise BadCron("empty spec string")
    timezone = "UTC"
    if spec.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, spec = spec.partition(" ")
        timezone = prefix.partition("=")[2]
        spec = spec.strip()
    if spec.startswith("@every "):
        text = spec[len("@every ") :]
        try:
            seconds = parse_go_duration(text)
        except BadCron as exc:
            raise BadCron(f"failed to parse duration {spec}: {exc}") from None
        # robfig reads a zone before @every and ignores it; shoal refuses one there
        return None, max(round(seconds * 1000), 0), "UTC"
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise BadCron(f"unrecognized descriptor: {spec}")
        return spec, None, timezone
    fields = spec.split()
    if len(fields) != 5:
        raise BadCron(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return " ".join(fields), None, timezone


def go_duration(ms: int) -> str:
    """A duration as Go prints it (`1h0m0s`, `1m30s`, `10s`, `500ms`)."""
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def cron_text(view: ScheduleView) -> str:
    """A schedule's trigger as a Jobatator expression (`CronExpression`)."""
    if view.every_ms is not None:
        return f"@every {go_duration(view.every_ms)}"
    if view.cron is None:
        return ""
    return view.cron if view.timezone == "UTC" else f"CRON_TZ={view.timezone} {view.cron}"


def schedule_id(queue: str, task: str) -> str:
    """The id of the schedule of (queue, job type) in a group (ids are per namespace)."""
    digest = hashlib.sha256(f"{queue}\0{task}".encode()).hexdigest()[:20]
    return f"jobatator-{digest}"


async def _declare(session: Session, command: Command) -> Reply:
    queue, task, spec = command.args
    try:
        cron, every_ms, timezone = parse_spec(spec)
    except BadCron as exc:
        return ErrorReply(ErrorCode.INVALID_CRON, str(exc))
    schedules = session.require_schedules()
    namespace, sid = session.group, schedule_id(queue, task)
    try:
        await schedules.get(namespace, sid)
        created = False
    except NotFound:
        created = True
    data = ScheduleInput(
        task=task,
        namespace=namespace,
        queue=queue,
        id=sid,
        every_ms=every_ms,
        cron=cron,
        timezone=timezone,
        payload=b"",
        content_type="text/plain; charset=utf-8",
    )
    try:
        await schedules.put(data)
    except InvalidArgument as exc:
        if exc.field in _SCHEDULE_FIELDS:
            return ErrorReply(ErrorCode.INVALID_CRON, exc.message)
        raise
    session.hub.declare(namespace, queue)
    await session.audit("schedule.put", sid)
    if created and session.hub.settings.ignore_delays:
        # Jobatator's test setting published one job at declaration; its clients expect it.
        await schedules.trigger_now(namespace, sid)
    return OkId(session.hub.entry_id(namespace, sid))


async def _list(session: Session, command: Command) -> Reply:
    queue = command.args[0]
    hub = session.hub
    entries = [
        go_recurrent_job(entry_id=hub.entry_id(s.namespace, s.id), type=s.task, cron=cron_text(s))
        for s in await session.require_schedules().list(session.group)
        if s.queue == queue
    ]
    if not entries and not await session.queue_exists(queue):
        return ErrorReply(ErrorCode.UNKNOWN_QUEUE)
    return JsonReply(entries or None)


async def _delete(session: Session, command: Command) -> Reply:
    text = command.args[0]
    number = int(text) if text.isascii() and text.isdigit() else 0
    entry = session.hub.entry(number) if number else None
    # Entry numbers count over every group; another group's entry is not this group's to
    # delete (nor to reveal by a `forbidden`), as LIST_RECURRENT_JOBS lists this group's only.
    if entry is None or entry[0] != session.group:
        return ErrorReply(ErrorCode.UNKNOWN_RECURRENT_JOB)
    try:
        await session.require_schedules().remove(*entry)
    except NotFound:  # deleted through another surface: the number names nothing now
        session.hub.forget_entry(number)
        raise
    session.hub.forget_entry(number)
    await session.audit("schedule.delete", entry[1])
    return OK


#: Handlers of the recurrent-job commands, by name.
HANDLERS = {
    "RECURRENT_JOB": _declare,
    "LIST_RECURRENT_JOBS": _list,
    "DELETE_RECURRENT_JOB": _delete,
}
