"""The runner on the memory store with a manual clock: slots, pause, overlap, catch-up, leaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shoal.core.model import JobState, LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.scheduler import ScheduleInput
from tests.unit._scheduler_helpers import (
    FAST,
    T0,
    T0_MS,
    Rig,
    assert_once,
    make_rig,
    seconds,
    settle,
)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = make_rig()
    yield rig
    await rig.stop_all()


def every_second(**options: object) -> ScheduleInput:
    return ScheduleInput(task="tick", id="tick", every_ms=1000, **options)  # type: ignore[arg-type]


async def test_interval_fires_exactly_on_its_slots(rig: Rig) -> None:
    await rig.schedules.add(every_second())
    await rig.start_runner("a")
    await rig.advance(5.0)
    assert await rig.slots("tick") == seconds(1, 2, 3, 4, 5)
    for job in await rig.jobs():
        # The manual clock is exactly on the slot when the runner enqueues.
        assert job.created_at * 1000 == pytest.approx(
            int((job.idempotency_key or "").split(":")[-1])
        )
        assert job.schedule_id == "tick" and job.task == "tick"
    stored = await rig.schedules.get("default", "tick")
    assert stored.last_fire_ms == T0_MS + 5000
    assert stored.next_due_ms == T0_MS + 6000


async def test_sub_second_interval_at_ten_milliseconds(rig: Rig) -> None:
    await rig.schedules.add(ScheduleInput(task="fast", id="fast", every_ms=10))
    await rig.start_runner("a")
    await rig.advance(0.5, step=0.005)
    slots = await rig.slots("fast")
    lead_ms = round(rig.queue.settings.lookahead * 1000)  # `allow` schedules fire this early
    assert slots == [T0_MS + 10 * k for k in range(1, 51 + lead_ms // 10)]


async def test_an_allow_schedule_fires_ahead_with_the_slot_as_run_at(rig: Rig) -> None:
    await rig.schedules.add(every_second())
    skipping = ScheduleInput(task="tick", id="skip", every_ms=1000, overlap="skip")
    await rig.schedules.add(skipping)
    await rig.start_runner("a")
    lead = rig.queue.settings.lookahead
    await rig.advance(1 - lead - 0.02, step=0.01)
    assert await rig.jobs() == []
    await rig.advance(0.03, step=0.01)  # inside the lookahead of the first slot
    [job] = await rig.jobs()
    assert job.schedule_id == "tick" and job.state is JobState.SCHEDULED
    assert job.run_at == T0 + 1 and job.created_at == pytest.approx(T0 + 1 - lead, abs=0.011)
    await rig.advance(lead, step=0.01)
    skip = [j for j in await rig.jobs() if j.schedule_id == "skip"]
    assert [j.run_at for j in skip] == [T0 + 1]  # at its slot: its policy looks back
    assert skip[0].created_at == pytest.approx(T0 + 1, abs=0.011)


async def test_pause_and_resume_fire_no_slot_of_the_pause(rig: Rig) -> None:
    await rig.schedules.add(every_second())
    await rig.start_runner("a")
    await rig.advance(2.0)
    await rig.schedules.pause("default", "tick")
    await rig.advance(3.0)
    assert await rig.slots("tick") == seconds(1, 2)
    await rig.advance(0.5)
    resumed = await rig.schedules.resume("default", "tick")
    assert resumed.next_due_ms == T0_MS + 6000
    await rig.advance(2.0)
    assert await rig.slots("tick") == seconds(1, 2, 6, 7)


async def test_trigger_now_enqueues_at_once_outside_the_slots(rig: Rig) -> None:
    await rig.schedules.add(every_second())
    await rig.start_runner("a")
    await rig.advance(1.25)
    result = await rig.schedules.trigger_now("default", "tick")
    assert result.created and result.job.state is JobState.QUEUED
    assert result.job.idempotency_key == f"schedule:tick:manual:{T0_MS + 1250}"
    await rig.advance(1.0)
    assert await rig.slots("tick") == seconds(1, 2)
    assert len(await rig.jobs()) == 3


async def test_backfill_enqueues_each_past_slot_once(rig: Rig) -> None:
    await rig.schedules.add(every_second(start_at=T0 - 100))
    await rig.start_runner("a")
    await rig.advance(3.0)  # the runner fires T0+1..T0+3
    first = await rig.schedules.backfill("default", "tick", T0 - 10, T0 + 2)
    assert [r.created for r in first] == [True] * 11 + [False] * 2
    again = await rig.schedules.backfill("default", "tick", T0 - 20, T0 + 3)
    assert sum(r.created for r in again) == 10
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(*range(-20, 4))


async def test_overlap_skip_waits_for_the_previous_job(rig: Rig) -> None:
    await rig.schedules.add(every_second(overlap="skip"))
    await rig.start_runner("a")
    await rig.advance(3.0)
    assert await rig.slots("tick") == seconds(1)  # slots 2 and 3 found job 1 still queued
    [job] = await rig.store.claim(
        ClaimRequest("default", ("default",), "w", 1, 30.0, rig.clock.now())
    )
    await rig.advance(1.0)
    assert await rig.slots("tick") == seconds(1)  # still running at slot 4
    await rig.queue.complete(LeaseRef(job.id, job.lease_token or ""))
    await rig.advance(1.0)
    assert await rig.slots("tick") == seconds(1, 5)


async def test_overlap_cancel_previous_cancels_then_fires(rig: Rig) -> None:
    await rig.schedules.add(every_second(overlap="cancel_previous"))
    await rig.start_runner("a")
    await rig.advance(1.0)
    [running] = await rig.store.claim(
        ClaimRequest("default", ("default",), "w", 1, 30.0, rig.clock.now())
    )
    await rig.advance(2.0)
    jobs = {job.idempotency_key: job for job in await rig.jobs()}
    assert await rig.slots("tick") == seconds(1, 2, 3)
    first = jobs[f"schedule:tick:{T0_MS + 1000}"]
    second = jobs[f"schedule:tick:{T0_MS + 2000}"]
    third = jobs[f"schedule:tick:{T0_MS + 3000}"]
    assert first.id == running.id and first.state is JobState.RUNNING and first.cancel_requested
    assert second.state is JobState.CANCELLED
    assert third.state is JobState.QUEUED


@pytest.mark.parametrize(
    ("policy", "limit", "expected"),
    [
        ("skip", 100, [1, 2, 3, 9, 10]),
        ("one", 100, [1, 2, 3, 8, 9, 10]),
        ("all", 100, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        ("all", 2, [1, 2, 3, 7, 8, 9, 10]),
    ],
)
async def test_catch_up_after_five_seconds_of_downtime(
    rig: Rig, policy: str, limit: int, expected: list[int]
) -> None:
    await rig.schedules.add(every_second(catch_up=policy, catch_up_limit=limit))
    first = await rig.start_runner("a")
    await rig.advance(3.5)
    await rig.stop_runner(first)
    rig.clock.advance(5.0)  # downtime: T0+4 .. T0+8 are missed
    await settle()
    await rig.start_runner("b")
    await rig.advance(2.0)
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(*expected)


async def test_a_new_schedule_missed_nothing(rig: Rig) -> None:
    await rig.start_runner("a")
    await rig.advance(1.0)
    await rig.schedules.add(every_second(catch_up="all"))
    await rig.advance(2.0)
    assert await rig.slots("tick") == seconds(2, 3)


async def test_two_runners_fire_each_slot_once_across_a_leader_change(rig: Rig) -> None:
    await rig.schedules.add(every_second(catch_up="all"))
    a = await rig.start_runner("a")
    b = await rig.start_runner("b")
    assert a.is_leader and not b.is_leader
    await rig.advance(4.0)
    await rig.stop_runner(a)  # releases the lease; b takes over at its next try
    await rig.advance(4.0)
    assert b.is_leader
    c = await rig.start_runner("c")
    await rig.advance(2.0)
    assert not c.is_leader
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(*range(1, 11))


async def test_a_follower_keeps_no_changes_and_takes_up_all_when_it_leads(rig: Rig) -> None:
    a = await rig.start_runner("a")
    b = await rig.start_runner("b")
    for i in range(200):  # changes only a leader acts on: a follower kept every key for ever
        await rig.schedules.add(ScheduleInput(task="tick", id=f"tmp-{i}", every_ms=3_600_000))
        await rig.schedules.remove("default", f"tmp-{i}")
    await rig.schedules.add(every_second(catch_up="all"))
    await settle()
    assert a.is_leader and not b.is_leader and len(b._dirty) == 0
    await rig.advance(2.0)
    await rig.stop_runner(a)
    await rig.advance(3.0)
    assert b.is_leader  # it loaded every schedule when it took the lead
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(*range(1, 6))


async def test_a_leader_that_vanishes_is_replaced_after_the_lease(rig: Rig) -> None:
    await rig.schedules.add(every_second(catch_up="all"))
    a = await rig.start_runner("a")
    b = await rig.start_runner("b")
    await rig.advance(2.0)
    # "a" freezes without releasing: its task is gone, its lease stays until the ttl passes.
    runner, task = next(item for item in rig.runners if item[0] is a)
    task.cancel()
    await settle()
    rig.runners.remove((runner, task))
    await rig.store.try_acquire_leader("scheduler", "a", 2.0, rig.clock.now())
    await rig.advance(5.0)
    assert b.is_leader
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(*range(1, 8))


async def test_two_leaders_at_once_still_make_one_job_per_slot(rig: Rig) -> None:
    """Correctness comes from the idempotency key: force two leaders (two lease names)."""
    await rig.schedules.add(every_second(jitter_ms=300))
    a = await rig.start_runner("a", replace(FAST, leader_name="one"))
    b = await rig.start_runner("b", replace(FAST, leader_name="two"))
    assert a.is_leader and b.is_leader
    await rig.advance(6.0)
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(1, 2, 3, 4, 5)
    assert a.created + b.created == 5


async def test_changes_are_picked_up_without_waiting(rig: Rig) -> None:
    await rig.schedules.add(ScheduleInput(task="slow", id="slow", every_ms=60_000))
    await rig.start_runner("a")
    await rig.advance(1.0)
    await rig.schedules.add(every_second())
    await rig.schedules.update(
        "default", "slow", ScheduleInput(task="slow", id="slow", every_ms=500)
    )
    await rig.advance(1.0)
    assert await rig.slots("tick") == seconds(2)
    assert await rig.slots("slow") == [T0_MS + 1500, T0_MS + 2000]
    await rig.schedules.remove("default", "tick")
    await rig.advance(2.0)
    assert await rig.slots("tick") == seconds(2)


async def test_jitter_delays_the_fire_but_keeps_the_slot(rig: Rig) -> None:
    schedule = await rig.schedules.add(every_second(jitter_ms=200))
    await rig.start_runner("a")
    await rig.advance(4.25 - rig.queue.settings.lookahead, step=0.01)
    jobs = await rig.jobs()
    assert await rig.slots("tick") == seconds(1, 2, 3, 4)
    lead_ms = rig.queue.settings.lookahead * 1000
    delays = []
    for job in jobs:
        slot = int((job.idempotency_key or "").split(":")[-1])
        delay = round(job.run_at * 1000) - slot
        assert delay == schedule.due_ms(slot) - slot
        assert job.created_at * 1000 == pytest.approx(job.run_at * 1000 - lead_ms, abs=10)
        assert 0 <= delay <= 200
        delays.append(delay)
    assert len(set(delays)) > 1


async def test_start_end_and_once(rig: Rig) -> None:
    await rig.schedules.add(every_second(start_at=T0 + 2, end_at=T0 + 4))
    await rig.schedules.add(ScheduleInput(task="once", id="once", at=T0 + 1.5))
    await rig.start_runner("a")
    await rig.advance(6.0)
    assert await rig.slots("tick") == seconds(2, 3, 4)
    assert await rig.slots("once") == [T0_MS + 1500]
    assert (await rig.schedules.get("default", "once")).next_due_ms is None


async def test_hourly_cron_across_the_paris_spring_gap_and_autumn_repeat() -> None:
    spring = datetime(2024, 3, 30, 22, 0, tzinfo=UTC).timestamp()  # 23:00 CET
    rig = make_rig(spring)
    try:
        await rig.schedules.add(
            ScheduleInput(task="h", id="h", cron="0 * * * *", timezone="Europe/Paris")
        )
        await rig.start_runner("a")
        await rig.advance(5 * 3600, step=300)
        fired = [datetime.fromtimestamp(s / 1000, UTC).hour for s in await rig.slots("h")]
        # Paris 00:00 01:00 (02:00 does not exist) 03:00 04:00 05:00 CEST = 23..03 UTC.
        assert fired == [23, 0, 1, 2, 3]
    finally:
        await rig.stop_all()


async def test_changes_made_elsewhere_arrive_with_the_resync(rig: Rig) -> None:
    from shoal.scheduler.model import build_schedule, encode_schedule

    await rig.start_runner("a", replace(FAST, resync_interval=5.0))
    await rig.advance(1.0)
    # Another process wrote this schedule: no event reaches this process.
    schedule = build_schedule(every_second(), "tick", rig.clock.now(), rig.queue.settings.limits)
    await rig.store.save_schedule(encode_schedule(schedule))
    await rig.advance(3.0)
    assert await rig.slots("tick") == []
    await rig.advance(3.0)
    # The resync at T0+5 takes it up: the slots it had before (T0+2..T0+5) were missed, and
    # its catch-up policy ("one", the default) fires the latest of them.
    assert await rig.slots("tick") == seconds(5, 6, 7)


async def test_a_runner_that_loses_the_lease_stops_firing_then_catches_up(rig: Rig) -> None:
    await rig.schedules.add(every_second(catch_up="one"))
    a = await rig.start_runner("a")
    await rig.advance(2.0)
    await rig.store.release_leader("scheduler", "a")
    assert await rig.store.try_acquire_leader("scheduler", "intruder", 3.0, rig.clock.now())
    await rig.advance(2.0)  # "a" notices at its next renewal (T0+2.5) and stands down
    assert not a.is_leader
    assert await rig.slots("tick") == seconds(1, 2)
    await rig.advance(4.0)  # the intruder's lease lapses at T0+5: "a" leads again
    assert a.is_leader
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(1, 2, 5, 6, 7, 8)  # catch-up "one": T0+5 for the missed 3..5


async def test_a_store_outage_is_survived(rig: Rig) -> None:
    await rig.schedules.add(every_second(catch_up="all"))
    await rig.start_runner("a")
    await rig.advance(2.0)
    await rig.store.close()  # every call raises Unavailable
    await rig.advance(3.0)
    await rig.store.open()
    await rig.advance(2.0)
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(1, 2, 3, 4, 5, 6, 7)


async def test_daily_cron_across_the_new_york_fall_back() -> None:
    start = datetime(2024, 11, 2, 12, 0, tzinfo=UTC).timestamp()
    rig = make_rig(start)
    try:
        await rig.schedules.add(
            ScheduleInput(task="d", id="d", cron="30 1 * * *", timezone="America/New_York")
        )
        await rig.start_runner("a")
        await rig.advance(2 * 86_400, step=900)
        fired = [datetime.fromtimestamp(s / 1000, UTC).isoformat() for s in await rig.slots("d")]
        # 01:30 EDT on the 3rd (the first of the two 01:30s), then 01:30 EST on the 4th.
        assert fired == ["2024-11-03T05:30:00+00:00", "2024-11-04T06:30:00+00:00"]
    finally:
        await rig.stop_all()


@pytest.mark.parametrize(
    ("policy", "expected"), [("skip", []), ("one", [10]), ("all", list(range(1, 11)))]
)
async def test_a_clock_jump_is_a_misfire_not_a_burst(
    rig: Rig, policy: str, expected: list[int]
) -> None:
    await rig.schedules.add(every_second(catch_up=policy))
    await rig.start_runner("a")
    rig.clock.advance(10.0)  # one step: every slot up to T0+10 is late, most far beyond grace
    await settle()
    await rig.advance(2.0)
    slots = await rig.slots("tick")
    assert_once(slots)
    assert slots == seconds(*expected, 11, 12)


async def test_an_unreadable_schedule_does_not_stop_the_others(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    from shoal.core.ports import ScheduleRecord

    await rig.store.save_schedule(ScheduleRecord("default", "bad", "{oops", False, None, None, T0))
    await rig.schedules.add(every_second())
    await rig.start_runner("a", replace(FAST, resync_interval=1.0))
    await rig.advance(3.0)
    assert await rig.slots("tick") == seconds(1, 2, 3)
    unreadable = [r for r in caplog.records if getattr(r, "event", "") == "schedule.unreadable"]
    assert len(unreadable) == 1


@pytest.mark.parametrize(("policy", "fires"), [("one", 1), ("skip", 0)])
async def test_a_one_shot_already_due_follows_the_catch_up_policy(
    rig: Rig, policy: str, fires: int
) -> None:
    await rig.start_runner("a")
    await rig.schedules.add(ScheduleInput(task="t", id="late", at=T0 - 5, catch_up=policy))
    await rig.advance(1.0)
    assert await rig.slots("late") == [T0_MS - 5000] * fires


async def test_many_edits_leave_one_pending_fire(rig: Rig) -> None:
    await rig.schedules.add(ScheduleInput(task="m", id="m", cron="0 0 1 * *"))
    runner = await rig.start_runner("a")
    for priority in range(300):
        data = ScheduleInput(task="m", id="m", cron="0 0 1 * *", priority=priority)
        await rig.schedules.update("default", "m", data)
        await settle(5)
    await settle()
    assert len(runner._heap) <= 2 * 1 + 64 + 1
    assert len(runner._entries) == 1
