"""`shoal schedules ls|show|add|rm|pause|resume|trigger|backfill`."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from shoal.cli._client import (
    JsonOption,
    NamespaceOption,
    UrlOption,
    call,
    console,
    emit_json,
    error_exit,
    parse_duration,
    parse_json,
)
from shoal.cli._render import job_dict, schedule_dict, schedules_table, when
from shoal.core.ports import Enqueued
from shoal.core.schedules import ScheduleInput, ScheduleView

if TYPE_CHECKING:
    from shoal.sdk._admin import Admin

__all__ = ["register"]

schedules = typer.Typer(
    help="Periodic and one-shot schedules: list, add, remove, pause, resume, trigger, backfill.",
    no_args_is_help=True,
)
IdArgument = Annotated[str, typer.Argument(help="The schedule id.")]


def register(app: typer.Typer) -> None:
    """Add the `schedules` command group to `app`."""
    app.add_typer(schedules, name="schedules")


def parse_time(option: str, text: str) -> float:
    """A POSIX time from ISO 8601 (UTC unless it says), POSIX seconds, or `+30s`/`-1h` from now."""
    if text[:1] in ("+", "-") and text[-1:].isalpha():
        offset = parse_duration(option, text[1:]) or 0.0
        return time.time() + (offset if text[0] == "+" else -offset)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):  # float() takes nan and inf
            error_exit(f"{option} {text!r}: must be a finite POSIX time", 2)
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        error_exit(f"{option} {text!r}: expected ISO 8601 (2030-01-31T09:00), POSIX or +30s", 2)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@schedules.command("ls")
def list_schedules(
    url: UrlOption = None, namespace: NamespaceOption = "default", as_json: JsonOption = False
) -> None:
    """The schedules with their trigger and next fire."""

    async def run(admin: Admin) -> list[ScheduleView]:
        return await admin.list_schedules()

    found = call(url, namespace, run)
    if as_json:
        emit_json({"schedules": [schedule_dict(view) for view in found]})
    else:
        console().print(schedules_table(found))


@schedules.command("show")
def show(
    schedule_id: IdArgument,
    count: Annotated[int, typer.Option("--upcoming", help="How many next fires to list.")] = 5,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """One schedule and its next fires."""

    async def run(admin: Admin) -> tuple[ScheduleView, list[float]]:
        view = await admin.get_schedule(schedule_id)
        return view, await admin.upcoming_fires(schedule_id, count)

    view, upcoming = call(url, namespace, run)
    if as_json:
        emit_json(schedule_dict(view, upcoming))
        return
    console().print(schedules_table([view]))
    for fire in upcoming:
        typer.echo(f"  next: {when(fire)}")


@schedules.command("add")
def add(
    task: Annotated[str, typer.Option("--task", help="The task each fire enqueues.")],
    every: Annotated[
        str | None, typer.Option("--every", help="An interval: 250ms, 5s, 1h.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="'*/5 * * * *' (6 fields: seconds first).")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="Once: ISO 8601, POSIX, or +30s.")] = None,
    schedule_id: Annotated[
        str | None, typer.Option("--id", help="An id (generated when omitted).")
    ] = None,
    queue: Annotated[str, typer.Option("--queue", "-q", help="The jobs' queue.")] = "default",
    args: Annotated[str | None, typer.Option("--args", help="A JSON list.")] = None,
    kwargs: Annotated[str | None, typer.Option("--kwargs", help="A JSON object.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="The cron's IANA zone.")] = "UTC",
    overlap: Annotated[
        str, typer.Option("--overlap", help="allow, skip or cancel_previous.")
    ] = "allow",
    start: Annotated[
        str | None, typer.Option("--start", help="No fire before: ISO 8601, POSIX or -1h.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="No fire after: ISO 8601, POSIX or +7d.")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Create a schedule: exactly one of --every, --cron, --at."""
    if sum(value is not None for value in (every, cron, at)) != 1:
        error_exit("give exactly one of --every, --cron, --at", 2)
    interval = parse_duration("--every", every)
    payload = {
        "args": parse_json("--args", args, list),
        "kwargs": parse_json("--kwargs", kwargs, dict),
    }
    data = ScheduleInput(
        task=task,
        namespace=namespace,
        queue=queue,
        id=schedule_id,
        every_ms=round(interval * 1000) if interval is not None else None,
        cron=cron,
        timezone=timezone,
        at=parse_time("--at", at) if at is not None else None,
        payload=json.dumps(payload).encode(),
        overlap=overlap,
        start_at=parse_time("--start", start) if start is not None else None,
        end_at=parse_time("--end", end) if end is not None else None,
        paused=paused,
    )

    async def run(admin: Admin) -> ScheduleView:
        return await admin.add_schedule(data)

    view = call(url, namespace, run)
    if as_json:
        emit_json(schedule_dict(view))
    else:
        typer.echo(f"{view.id} (next fire {when(view.next_fire_at)})")


def _steer(verb: str, schedule_id: str, url: str | None, namespace: str, as_json: bool) -> None:
    async def run(admin: Admin) -> ScheduleView | None:
        if verb == "pause":
            return await admin.pause_schedule(schedule_id)
        if verb == "resume":
            return await admin.resume_schedule(schedule_id)
        await admin.remove_schedule(schedule_id)
        return None

    view = call(url, namespace, run)
    if as_json:
        emit_json({"id": schedule_id, "action": verb, "schedule": view and schedule_dict(view)})
    else:
        next_fire = f" (next fire {when(view.next_fire_at)})" if view is not None else ""
        typer.echo(f"schedule {schedule_id}: {verb}{'d' if verb != 'rm' else ''}{next_fire}")


@schedules.command("rm")
def remove(
    schedule_id: IdArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Delete a schedule (the jobs it made stay)."""
    _steer("rm", schedule_id, url, namespace, as_json)


@schedules.command("pause")
def pause(
    schedule_id: IdArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Stop firing."""
    _steer("pause", schedule_id, url, namespace, as_json)


@schedules.command("resume")
def resume(
    schedule_id: IdArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Fire again from the next slot (the paused slots are not caught up)."""
    _steer("resume", schedule_id, url, namespace, as_json)


@schedules.command("trigger")
def trigger(
    schedule_id: IdArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Enqueue the schedule's job now, outside its slots; prints the job id."""

    async def run(admin: Admin) -> Enqueued:
        return await admin.trigger_schedule(schedule_id)

    enqueued = call(url, namespace, run)
    if as_json:
        emit_json(job_dict(enqueued.job))
    else:
        typer.echo(enqueued.job.id)


@schedules.command("backfill")
def backfill(
    schedule_id: IdArgument,
    start: Annotated[str, typer.Option("--from", help="ISO 8601, POSIX, or +/-DURATION.")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601, POSIX, or +DURATION.")],
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Enqueue one job for every slot in [--from, --to] that has none yet."""
    begin, finish = parse_time("--from", start), parse_time("--to", end)

    async def run(admin: Admin) -> list[Enqueued]:
        return await admin.backfill_schedule(schedule_id, begin, finish)

    made = call(url, namespace, run)
    if as_json:
        emit_json({"id": schedule_id, "jobs": [job_dict(item.job) for item in made]})
    else:
        typer.echo(f"schedule {schedule_id}: {len(made)} job(s) enqueued")
