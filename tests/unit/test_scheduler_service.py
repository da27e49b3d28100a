"""ScheduleService: validation (nothing stored on bad input), CRUD, the stored JSON spec."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from shoal.core.errors import Conflict, InvalidArgument, NotFound, StorageError
from shoal.core.ports import ScheduleRecord
from shoal.scheduler import CatchUp, CronTrigger, IntervalTrigger, Overlap, ScheduleInput
from shoal.scheduler.model import decode_schedule, encode_schedule
from shoal.scheduler.service import MAX_BACKFILL
from tests.unit._scheduler_helpers import T0, T0_MS, make_rig


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Nowhere/Town"}, "timezone"),
        ({"every_ms": 1000, "timezone": "Europe/Paris"}, "timezone"),  # was silently ignored
        ({"at": T0 + 60, "timezone": "Europe/Paris"}, "timezone"),
        ({"at": T0 + 60, "start_at": T0 + 120}, "at"),  # accepted, and never fired
        ({"at": T0 + 60, "end_at": T0 + 30}, "at"),
        ({"every_ms": 0}, "every_ms"),
        ({"every_ms": -1000}, "every_ms"),
        ({"every_ms": 5}, "every_ms"),
        ({}, "trigger"),
        ({"every_ms": 1000, "cron": "* * * * *"}, "trigger"),
        ({"at": float("inf")}, "at"),
        ({"every_ms": 1000, "overlap": "sometimes"}, "overlap"),
        ({"every_ms": 1000, "catch_up": "most"}, "catch_up"),
        ({"every_ms": 1000, "catch_up": "all", "catch_up_limit": 0}, "catch_up_limit"),
        ({"every_ms": 1000, "jitter_ms": -1}, "jitter_ms"),
        ({"every_ms": 1000, "start_at": T0 + 10, "end_at": T0}, "end_at"),
        ({"every_ms": 1000, "queue": "has space"}, "queue"),
        ({"every_ms": 1000, "task": ""}, "task"),
        ({"every_ms": 1000, "id": "a b"}, "id"),
        ({"every_ms": 1000, "max_attempts": 0}, "max_attempts"),
    ],
)
async def test_bad_input_names_the_field_and_stores_nothing(
    changes: dict[str, object], field: str
) -> None:
    rig = make_rig()
    data = ScheduleInput(**{"task": "t", **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as caught:
        await rig.schedules.add(data)
    assert caught.value.field == field
    assert await rig.store.list_schedules() == []


async def test_add_get_list_remove() -> None:
    rig = make_rig()
    added = await rig.schedules.add(ScheduleInput(task="t", id="s1", every_ms=1000))
    assert added.trigger == IntervalTrigger(1000, T0_MS + 1000)
    assert added.next_due_ms == T0_MS + 1000
    generated = await rig.schedules.add(
        ScheduleInput(task="t", cron="*/5 * * * *", timezone="Europe/Paris")
    )
    assert generated.trigger == CronTrigger("*/5 * * * *", "Europe/Paris")
    assert await rig.schedules.get("default", "s1") == added
    assert {s.id for s in await rig.schedules.list()} == {"s1", generated.id}
    assert await rig.schedules.list("other") == []
    with pytest.raises(Conflict):
        await rig.schedules.add(ScheduleInput(task="t", id="s1", every_ms=5000))
    await rig.schedules.remove("default", "s1")
    with pytest.raises(NotFound):
        await rig.schedules.get("default", "s1")
    with pytest.raises(NotFound):
        await rig.schedules.remove("default", "s1")


async def test_update_keeps_state_and_phase_but_not_a_bad_input() -> None:
    rig = make_rig()
    await rig.schedules.add(ScheduleInput(task="t", id="s", every_ms=1000))
    await rig.schedules.pause("default", "s")
    rig.clock.advance(0.3)
    updated = await rig.schedules.update(
        "default", "s", ScheduleInput(task="t2", id="s", every_ms=1000, payload=b"[1]")
    )
    assert updated.paused and updated.task == "t2" and updated.payload == b"[1]"
    assert updated.trigger == IntervalTrigger(1000, T0_MS + 1000)  # same length: same phase
    assert updated.since_ms == T0_MS
    retimed = await rig.schedules.update("default", "s", ScheduleInput(task="t", every_ms=400))
    assert retimed.trigger == IntervalTrigger(400, T0_MS + 700)
    assert retimed.since_ms == T0_MS + 300
    with pytest.raises(InvalidArgument):
        await rig.schedules.update("default", "s", ScheduleInput(task="t", every_ms=1))
    assert (await rig.schedules.get("default", "s")).trigger == retimed.trigger
    with pytest.raises(NotFound):
        await rig.schedules.update("default", "nope", ScheduleInput(task="t", every_ms=1000))


async def test_changes_are_announced_on_the_event_bus() -> None:
    rig = make_rig()
    subscription = rig.queue.events.subscribe(lambda e: e.kind.startswith("schedule."))
    await rig.schedules.add(ScheduleInput(task="t", id="s", every_ms=1000))
    await rig.schedules.pause("default", "s")
    await rig.schedules.resume("default", "s")
    await rig.schedules.update("default", "s", ScheduleInput(task="t", every_ms=2000))
    await rig.schedules.remove("default", "s")
    kinds = []
    while (event := await subscription.next(0)) is not None:
        assert event.data["schedule_id"] == "s"
        kinds.append(event.kind)
    assert kinds == [
        "schedule.created",
        "schedule.paused",
        "schedule.resumed",
        "schedule.updated",
        "schedule.deleted",
    ]


async def test_spec_round_trips_and_keeps_unknown_keys() -> None:
    rig = make_rig()
    schedule = await rig.schedules.add(
        ScheduleInput(
            task="t",
            id="s",
            cron="0 9 * * 1-5",
            timezone="America/New_York",
            payload=b"\x00\xffbinary",
            content_type="application/octet-stream",
            priority=5,
            max_attempts=4,
            timeout=30.0,
            tags=("a", "b"),
            overlap="cancel_previous",
            catch_up="all",
            catch_up_limit=7,
            jitter_ms=250,
            start_at=T0,
            end_at=T0 + 86_400 * 30,
        )
    )
    assert schedule.overlap is Overlap.CANCEL_PREVIOUS and schedule.catch_up is CatchUp.ALL
    record = encode_schedule(schedule)
    assert decode_schedule(record) == schedule
    spec = json.loads(record.spec)
    spec["added_by_a_newer_version"] = {"x": 1}
    newer = replace(record, spec=json.dumps(spec))
    assert json.loads(encode_schedule(decode_schedule(newer)).spec) == spec


def test_an_unreadable_spec_is_a_storage_error() -> None:
    record = ScheduleRecord("default", "s", "{not json", False, None, None, T0)
    with pytest.raises(StorageError):
        decode_schedule(record)


async def test_backfill_bounds() -> None:
    rig = make_rig()
    await rig.schedules.add(ScheduleInput(task="t", id="s", every_ms=10, start_at=T0 - 3600))
    with pytest.raises(InvalidArgument) as caught:
        await rig.schedules.backfill("default", "s", T0 - 10, T0 + 10)
    assert caught.value.field == "end"
    with pytest.raises(InvalidArgument):
        await rig.schedules.backfill("default", "s", T0 - 1, T0 - 2)
    with pytest.raises(InvalidArgument):
        await rig.schedules.backfill("default", "s", T0 - 3600, T0)  # 360,000 slots
    assert len(await rig.schedules.backfill("default", "s", T0 - 10, T0)) == 1001
    assert MAX_BACKFILL == 10_000
    assert await rig.schedules.backfill("default", "s", T0 - 7200, T0 - 3601) == []


async def test_backfill_counts_only_the_slots_within_the_schedules_start_and_end() -> None:
    rig = make_rig(T0 + 20_000)
    await rig.schedules.add(
        ScheduleInput(
            task="t", id="s", cron="* * * * * *", start_at=T0 + 19_990, end_at=T0 + 19_995
        )
    )
    # 20,000 slots of the trigger in the range, but only 6 of the schedule's: all of them.
    results = await rig.schedules.backfill("default", "s", T0, T0 + 19_999)
    slots = sorted(int((r.job.idempotency_key or "").rsplit(":", 1)[1]) for r in results)
    assert slots == [T0_MS + 1000 * k for k in range(19_990, 19_996)]


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "cron", "expression": "* * * * *", "timezone": "Gone/Away"},
        {"kind": "cron", "expression": "nonsense", "timezone": "UTC"},
        {"kind": "interval", "every_ms": 0, "anchor_ms": 0},
        {"kind": "sometimes"},
    ],
)
async def test_a_stored_trigger_that_no_longer_makes_sense_is_a_storage_error(
    trigger: dict[str, object],
) -> None:
    rig = make_rig()
    record = encode_schedule(
        await rig.schedules.add(ScheduleInput(task="t", id="s", every_ms=1000))
    )
    spec = json.loads(record.spec)
    spec["trigger"] = trigger
    with pytest.raises(StorageError):
        decode_schedule(replace(record, spec=json.dumps(spec)))


async def test_put_creates_then_updates_in_place() -> None:
    rig = make_rig()
    created = await rig.schedules.put(ScheduleInput(task="t", id="s", every_ms=1000))
    rig.clock.advance(5)
    again = await rig.schedules.put(ScheduleInput(task="t", id="s", every_ms=1000, priority=3))
    assert again.created_at == created.created_at and again.trigger == created.trigger
    assert again.priority == 3
    with pytest.raises(InvalidArgument) as caught:
        await rig.schedules.put(ScheduleInput(task="t", every_ms=1000))
    assert caught.value.field == "id"
