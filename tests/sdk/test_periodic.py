"""`@app.periodic` and `app.schedules`: in local mode (memory, SQLite) the app's own scheduler
fires; in distributed mode the server's does. Bad input is named and stores nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shoal.core.errors import Conflict, InvalidArgument, NotFound
from shoal.sdk import App, ScheduleView, WorkerConfig
from shoal.sdk._schedules import parse_duration
from tests.sdk import tasks


def test_durations() -> None:
    assert parse_duration("every", "10ms") == 0.01
    assert parse_duration("every", "250ms") == 0.25
    assert parse_duration("every", "1s") == 1.0
    assert parse_duration("every", "5m") == 300.0
    assert parse_duration("every", "1h") == 3600.0
    assert parse_duration("every", 0.25) == 0.25
    assert parse_duration("every", timedelta(milliseconds=100)) == 0.1
    with pytest.raises(InvalidArgument, match="every: 'often' is not a duration"):
        parse_duration("every", "often")
    # round(nan) raised a bare ValueError, a huge number an OverflowError, at declaration
    for value in (float("nan"), float("inf"), -float("inf"), "9" * 400):
        with pytest.raises(InvalidArgument, match="every: "):
            parse_duration("every", value)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_periodic_fires_in_local_mode(backend: str, tmp_path: Path) -> None:
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'periodic.db'}"
    app = App(url, worker=WorkerConfig(concurrency=4))
    seen: list[tuple[int, float]] = []
    enough = asyncio.Event()

    @app.periodic(every="100ms", args=(7,), kwargs={"scale": 2.0})
    async def tick(value: int, scale: float) -> None:
        seen.append((value, scale))
        if len(seen) >= 3:
            enough.set()

    assert tick.name.endswith("tick")
    async with app:
        view = await app.schedules.aget(tick.name)  # the task's name is the default id
        assert (view.kind, view.every_ms, view.task) == ("interval", 100, tick.name)
        await asyncio.wait_for(enough.wait(), 10)
        assert seen[0] == (7, 2.0)
        fires = await app.schedules.aupcoming(tick.name, 3)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fires)]
        assert gaps == [0.1, 0.1]


async def test_periodic_cron_with_seconds_and_an_existing_task() -> None:
    app = App("memory://", worker=WorkerConfig(concurrency=2))
    fired = asyncio.Event()

    @app.task(name="every-second", queue="crons")
    async def beat() -> None:
        fired.set()

    app.periodic(cron="* * * * * *", timezone="Europe/Paris", id="beat")(beat)
    async with app:
        view = await app.schedules.aget("beat")
        assert (view.cron, view.timezone, view.queue) == ("* * * * * *", "Europe/Paris", "crons")
        await asyncio.wait_for(fired.wait(), 5)


async def test_a_restarted_app_updates_its_declared_schedule(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    for every, paused in (("1h", False), ("2h", True)):
        app = App(url, worker=None)

        @app.periodic(name="report", every=every, paused=paused)
        def report() -> None: ...

        async with app:
            view = await app.schedules.aget("report")
            assert view.every_ms == parse_duration("every", every) * 1000
            assert len(await app.schedules.alist()) == 1
    assert not view.paused  # `put` keeps the stored pause flag; pausing is an action


async def test_the_schedules_api(app: App) -> None:
    schedules = app.schedules
    view = await schedules.aadd(tasks.label, every="1h", args=("hourly",), id="hourly")
    assert isinstance(view, ScheduleView) and view.namespace == app.namespace
    assert json.loads(view.payload) == {"args": ["hourly"], "kwargs": {}}
    assert view.next_fire_at is not None and view.next_fire_at > time.time() + 3500
    with pytest.raises(Conflict):
        await schedules.aadd(tasks.label, every="1h", args=("again",), id="hourly")
    await schedules.aadd("some.other.task", cron="0 9 * * 1-5", timezone="America/New_York")
    listed = {item.task for item in await schedules.alist()}
    assert listed == {tasks.label.name, "some.other.task"}
    assert (await schedules.apause("hourly")).paused
    resumed = await schedules.aresume("hourly")
    assert not resumed.paused and resumed.next_fire_at is not None
    handle = await schedules.atrigger("hourly")
    job = (await handle.arefresh()).job
    assert job.task == tasks.label.name and job.schedule_id == "hourly"
    if app.is_local:
        past = datetime.now(UTC) - timedelta(hours=3, minutes=1)
        await schedules.aadd(tasks.label, every="1h", start=past, args=("b",), id="backfilled")
        filled = await schedules.abackfill("backfilled", past, datetime.now(UTC))
        assert len(filled) == 4  # the start and three hours after it
        again = await schedules.abackfill("backfilled", past, datetime.now(UTC))
        assert [item.id for item in again] == [item.id for item in filled]
        assert len(await schedules.aupcoming("hourly", 4)) == 4
    await schedules.aremove("hourly")
    with pytest.raises(NotFound):
        await schedules.aget("hourly")


def test_the_blocking_facade(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 'sync.db'}", worker=None)
    with app:
        app.schedules.add("nightly", cron="0 3 * * *", id="nightly")
        assert [view.id for view in app.schedules.list()] == ["nightly"]
        assert app.schedules.pause("nightly").paused
        assert not app.schedules.resume("nightly").paused
        first = app.schedules.upcoming("nightly", 1)[0]
        assert (first.hour, first.minute, first.second) == (3, 0, 0)
        assert app.schedules.trigger("nightly").created
        app.schedules.remove("nightly")
        assert app.schedules.list() == []


BAD = [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * *"}, "cron"),
    ({"every": 0}, "every"),
    ({"every": "0ms"}, "every"),
    ({"every": -1.0}, "every"),
    ({"every": "5ms"}, "every"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"every": "1s", "cron": "* * * * *"}, "every/cron/at"),
    ({"every": "1s", "overlap": "sometimes"}, "overlap"),
    ({"every": "1s", "jitter": "forever"}, "jitter"),
]


@pytest.mark.parametrize(("options", "named"), BAD)
async def test_bad_input_is_named_and_nothing_is_stored(
    app: App, options: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await app.schedules.aadd("t", id="bad", **options)  # type: ignore[arg-type]
    assert caught.value.field == named
    assert await app.schedules.alist() == []


@pytest.mark.parametrize(("options", "named"), BAD)
def test_periodic_refuses_bad_input_when_it_decorates(
    options: dict[str, object], named: str
) -> None:
    app = App("memory://")
    with pytest.raises(InvalidArgument) as caught:

        @app.periodic(**options)  # type: ignore[arg-type]
        def job() -> None: ...

    assert caught.value.field == named


async def test_the_server_names_the_field_too(app: App) -> None:
    """Past the SDK's own checks (a raw `ScheduleInput`), the service refuses the same way."""
    from shoal.core.schedules import ScheduleInput

    with pytest.raises(InvalidArgument) as caught:
        await app.transport.schedules().add(
            ScheduleInput(task="t", namespace=app.namespace, id="raw", every_ms=0)
        )
    assert caught.value.field == "every_ms"
    assert await app.transport.schedules().list(app.namespace) == []


async def test_periodic_is_put_on_the_server_in_distributed_mode(grpc_server: str) -> None:
    app = App(grpc_server, namespace="periodic-grpc", worker=None)

    @app.periodic(name="grpc-tick", every="250ms", overlap="skip", catch_up="all")
    def tick() -> None: ...

    async with app:
        view = await app.schedules.aget("grpc-tick")
        assert (view.every_ms, view.overlap, view.catch_up) == (250, "skip", "all")
        await app.schedules.aremove("grpc-tick")
