"""Schedules from the SDK: `@app.periodic(...)` and `app.schedules`.

A schedule fires its task on an interval (down to 10 ms), a cron expression (5 fields, or 6
with seconds first) or once; each slot makes exactly one job (idempotency key
`schedule:<id>:<slot>`). `@app.periodic` declares one that is `put` (created or updated) each
time the app starts: into the in-process scheduler in local mode, on the server otherwise.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypedDict, TypeVar, Unpack, overload

from shoal.core.errors import InvalidArgument
from shoal.core.model import DEFAULT_QUEUE
from shoal.core.schedules import ScheduleApi, ScheduleInput, ScheduleView
from shoal.core.validation import Limits
from shoal.scheduler.model import build_schedule

if TYPE_CHECKING:
    from shoal.sdk._app import App
    from shoal.sdk._handle import JobHandle
    from shoal.sdk._tasks import Task

__all__ = [
    "PeriodicDecorator",
    "ScheduleOptions",
    "Schedules",
    "parse_duration",
    "periodic",
    "schedule_input",
]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The scheduler's field names as the SDK spells them (errors name what the caller wrote).
_SDK_NAMES = {
    "every_ms": "every",
    "jitter_ms": "jitter",
    "start_at": "start",
    "end_at": "end",
    "trigger": "every/cron/at",
}


class ScheduleOptions(TypedDict, total=False):
    """What `@app.periodic` and `app.schedules.add` take; give one of every, cron, at."""

    #: An interval: `"250ms"`, `"1s"`, `"5m"`, `"1h"`, seconds, or a `timedelta`.
    every: str | float | timedelta
    #: 5 fields, or 6 with seconds first (`"*/5 * * * * *"`).
    cron: str
    #: Once, at this time (an aware `datetime` or POSIX seconds).
    at: float | datetime
    #: The IANA time zone `cron` is read in (UTC by default).
    timezone: str
    #: The schedule's id; the task's name by default.
    id: str
    queue: str
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    #: `allow` (default), `skip` while the previous job runs, `cancel_previous`.
    overlap: str
    #: After downtime: `one` (default), `skip`, or `all` (the latest `catch_up_limit`).
    catch_up: str
    catch_up_limit: int
    #: Each fire waits a pseudo-random 0..jitter after its slot.
    jitter: str | float | timedelta
    start: float | datetime
    end: float | datetime
    paused: bool
    priority: int
    max_attempts: int
    timeout: float


def parse_duration(field: str, value: str | float | timedelta) -> float:
    """Seconds in `value`: `"10ms"`, `"250ms"`, `"1s"`, `"5m"`, `"1h"`, a number, a timedelta."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise InvalidArgument(field, f"{value!r} is not a duration such as 250ms, 1s or 5m")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(field, "must be a duration such as 250ms, a number or a timedelta")
    else:
        seconds = float(value)
    if not math.isfinite(seconds):  # round(nan) and round(inf) raised past the checks
        raise InvalidArgument(field, "must be a finite duration")
    return seconds


def _instant(field: str, value: float | datetime | None) -> float | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgument(field, "use a timezone-aware datetime")
        return value.timestamp()
    return value


def _ms(field: str, value: str | float | timedelta) -> int:
    seconds = parse_duration(field, value)
    if seconds <= 0 and field == "every":
        raise InvalidArgument(field, "must be positive")
    return round(seconds * 1000)


def _renamed(exc: InvalidArgument) -> InvalidArgument:
    name = _SDK_NAMES.get(exc.field, exc.field)
    return InvalidArgument(name, exc.message.partition(": ")[2] or exc.message)


def schedule_input(app: App, task: Task[Any, Any] | str, options: ScheduleOptions) -> ScheduleInput:
    """Check `options` (as the scheduler will) into the definition the service stores."""
    known = ScheduleOptions.__annotations__
    unknown = [name for name in options if name not in known]
    if unknown:
        raise InvalidArgument(unknown[0], f"unknown schedule option; one of {', '.join(known)}")
    name = task if isinstance(task, str) else task.name
    queue = options.get("queue") or (None if isinstance(task, str) else task.defaults.queue)
    args, kwargs = tuple(options.get("args", ())), dict(options.get("kwargs", {}))
    if isinstance(task, str):
        payload = app.serializer.dumps({"args": list(args), "kwargs": kwargs})
    else:
        payload = task.signature.encode(args, kwargs, app.serializer)
    every = options.get("every")
    data = ScheduleInput(
        task=name,
        namespace=app.namespace,
        queue=queue or "default",
        id=options.get("id", name),
        every_ms=None if every is None else _ms("every", every),
        cron=options.get("cron"),
        timezone=options.get("timezone", "UTC"),
        at=_instant("at", options.get("at")),
        payload=payload,
        content_type=app.serializer.content_type,
        priority=options.get("priority", 0),
        max_attempts=options.get("max_attempts"),
        timeout=options.get("timeout"),
        overlap=options.get("overlap", "allow"),
        catch_up=options.get("catch_up", "one"),
        catch_up_limit=options.get("catch_up_limit", 100),
        jitter_ms=_ms("jitter", options.get("jitter", 0)),
        start_at=_instant("start", options.get("start")),
        end_at=_instant("end", options.get("end")),
        paused=options.get("paused", False),
    )
    try:  # the same checks the service makes, so a mistake shows where it is written
        build_schedule(data, data.id or name, datetime.now(UTC).timestamp(), Limits())
    except InvalidArgument as exc:
        raise _renamed(exc) from exc
    return data


class Schedules:
    """`app.schedules`: define and steer the schedules of the app's namespace.

    Each method has an async form (`aadd`, `aget`, ...) and a blocking one (`add`, `get`, ...)
    that runs it on the app's loop, as tasks have `aenqueue` and `enqueue`.
    """

    def __init__(self, app: App) -> None:
        self._app = app

    async def _api(self, call: Callable[[ScheduleApi], Any]) -> Any:
        async def run() -> Any:
            try:
                return await call(self._app.transport.schedules())
            except InvalidArgument as exc:
                raise _renamed(exc) from exc

        return await self._app.on_home(run)

    def _handle(self, job: Any, created: bool) -> JobHandle[Any]:
        from shoal.sdk._handle import JobHandle

        task = self._app.find_task(job.task)
        return JobHandle(self._app, job.id, task, job=job, created=created)

    # --- async ------------------------------------------------------------------------------

    async def aadd(
        self, task: Task[Any, Any] | str, **options: Unpack[ScheduleOptions]
    ) -> ScheduleView:
        """Create a schedule of `task` (a `Task` or a task name); see `ScheduleOptions`.

        Raises:
            InvalidArgument: a bad option, named (nothing is stored).
            Conflict: the id is taken.
        """
        data = schedule_input(self._app, task, options)
        result: ScheduleView = await self._api(lambda api: api.add(data))
        return result

    async def aput(
        self, task: Task[Any, Any] | str, **options: Unpack[ScheduleOptions]
    ) -> ScheduleView:
        """Create the schedule, or update the one with its id (firing state kept)."""
        data = schedule_input(self._app, task, options)
        result: ScheduleView = await self._api(lambda api: api.put(data))
        return result

    async def aget(self, schedule_id: str) -> ScheduleView:
        """The schedule; `NotFound` if there is none."""
        ns = self._app.namespace
        result: ScheduleView = await self._api(lambda api: api.get(ns, schedule_id))
        return result

    async def alist(self) -> builtins.list[ScheduleView]:
        """The schedules of the app's namespace, by id."""
        ns = self._app.namespace
        result: builtins.list[ScheduleView] = await self._api(lambda api: api.list(ns))
        return result

    async def aremove(self, schedule_id: str) -> None:
        """Delete the schedule (its jobs stay)."""
        ns = self._app.namespace
        await self._api(lambda api: api.remove(ns, schedule_id))

    async def apause(self, schedule_id: str) -> ScheduleView:
        """Stop firing."""
        ns = self._app.namespace
        result: ScheduleView = await self._api(lambda api: api.pause(ns, schedule_id))
        return result

    async def aresume(self, schedule_id: str) -> ScheduleView:
        """Fire again from the next slot (the paused slots are not caught up)."""
        ns = self._app.namespace
        result: ScheduleView = await self._api(lambda api: api.resume(ns, schedule_id))
        return result

    async def atrigger(self, schedule_id: str) -> JobHandle[Any]:
        """Enqueue the schedule's job now, outside its slots."""
        ns = self._app.namespace
        enqueued = await self._api(lambda api: api.trigger_now(ns, schedule_id))
        return self._handle(enqueued.job, enqueued.created)

    async def abackfill(
        self, schedule_id: str, start: float | datetime, end: float | datetime
    ) -> builtins.list[JobHandle[Any]]:
        """One job for every slot in [start, end] that has none yet (a slot's job is reused)."""
        ns = self._app.namespace
        first, last = _instant("start", start), _instant("end", end)
        assert first is not None and last is not None
        results = await self._api(lambda api: api.backfill(ns, schedule_id, first, last))
        return [self._handle(item.job, item.created) for item in results]

    async def aupcoming(self, schedule_id: str, count: int = 5) -> builtins.list[datetime]:
        """The next `count` fire times (UTC)."""
        ns = self._app.namespace
        times = await self._api(lambda api: api.upcoming(ns, schedule_id, count))
        return [datetime.fromtimestamp(value, UTC) for value in times]

    # --- blocking ---------------------------------------------------------------------------

    def add(self, task: Task[Any, Any] | str, **options: Unpack[ScheduleOptions]) -> ScheduleView:
        """Blocking `aadd`."""
        return self._app.run_sync(lambda: self.aadd(task, **options))

    def put(self, task: Task[Any, Any] | str, **options: Unpack[ScheduleOptions]) -> ScheduleView:
        """Blocking `aput`."""
        return self._app.run_sync(lambda: self.aput(task, **options))

    def get(self, schedule_id: str) -> ScheduleView:
        """Blocking `aget`."""
        return self._app.run_sync(lambda: self.aget(schedule_id))

    def list(self) -> builtins.list[ScheduleView]:
        """Blocking `alist`."""
        return self._app.run_sync(self.alist)

    def remove(self, schedule_id: str) -> None:
        """Blocking `aremove`."""
        self._app.run_sync(lambda: self.aremove(schedule_id))

    def pause(self, schedule_id: str) -> ScheduleView:
        """Blocking `apause`."""
        return self._app.run_sync(lambda: self.apause(schedule_id))

    def resume(self, schedule_id: str) -> ScheduleView:
        """Blocking `aresume`."""
        return self._app.run_sync(lambda: self.aresume(schedule_id))

    def trigger(self, schedule_id: str) -> JobHandle[Any]:
        """Blocking `atrigger`."""
        return self._app.run_sync(lambda: self.atrigger(schedule_id))

    def backfill(
        self, schedule_id: str, start: float | datetime, end: float | datetime
    ) -> builtins.list[JobHandle[Any]]:
        """Blocking `abackfill`."""
        return self._app.run_sync(lambda: self.abackfill(schedule_id, start, end))

    def upcoming(self, schedule_id: str, count: int = 5) -> builtins.list[datetime]:
        """Blocking `aupcoming`."""
        return self._app.run_sync(lambda: self.aupcoming(schedule_id, count))


class PeriodicDecorator(Protocol):
    """What `app.periodic(...)` returns: makes a function a `Task`; a `Task` stays one."""

    @overload
    def __call__(self, fn: Task[P, R], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


def periodic(app: App, name: str | None, options: ScheduleOptions) -> PeriodicDecorator:
    """`@app.periodic(...)`: register the function as a task (a `Task` stays as it is) and
    declare its schedule, checked now and put each time the app starts.
    """

    def decorate(fn: Callable[..., Any]) -> Task[Any, Any]:
        from shoal.sdk._tasks import Task

        if isinstance(fn, Task):
            task: Task[Any, Any] = fn
        else:
            task = app.task(name=name, queue=options.get("queue", DEFAULT_QUEUE))(fn)
        app.declare_schedule(schedule_input(app, task, options))
        return task

    return decorate  # type: ignore[return-value]  # one body serves every overload
