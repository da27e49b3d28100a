"""Random runs: restarts, a second runner, pauses, edits, manual fires, clock steps. Whatever
happens, a slot never yields two jobs, and with catch-up "all" and no pause none is lost.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.scheduler import ScheduleInput
from tests.unit._scheduler_helpers import T0_MS, assert_once, make_rig, settle

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.05, 0.25, 0.5, 1.0, 2.5, 7.0])),
        st.tuples(st.just("restart"), st.just(0.0)),
        st.tuples(st.just("toggle_second"), st.just(0.0)),
        st.tuples(st.just("pause"), st.just(0.0)),
        st.tuples(st.just("resume"), st.just(0.0)),
        st.tuples(st.just("edit"), st.just(0.0)),
        st.tuples(st.just("trigger"), st.just(0.0)),
        st.tuples(st.just("backfill"), st.just(0.0)),
    ),
    max_size=25,
)


async def play(steps: list[tuple[str, float]], overlap: str) -> None:
    rig = make_rig()
    data = ScheduleInput(
        task="t", id="s", every_ms=500, catch_up="all", catch_up_limit=10_000, overlap=overlap
    )
    await rig.schedules.add(data)
    first = await rig.start_runner("a")
    second = None
    paused = False
    try:
        for action, value in steps:
            if action == "advance":
                await rig.advance(value, step=min(value, 0.25))
            elif action == "restart":
                await rig.stop_runner(first)
                first = await rig.start_runner("a")
            elif action == "toggle_second":
                if second is None:
                    second = await rig.start_runner("b")
                else:
                    await rig.stop_runner(second)
                    second = None
            elif action == "pause":
                await rig.schedules.pause("default", "s")
                paused = True
            elif action == "resume":
                await rig.schedules.resume("default", "s")
            elif action == "edit":
                await rig.schedules.update("default", "s", data)
            elif action == "trigger":
                await rig.schedules.trigger_now("default", "s")
            elif action == "backfill":
                now = rig.clock.now()
                await rig.schedules.backfill("default", "s", now - 3, now)
            await settle()
        await rig.schedules.resume("default", "s")
        await rig.advance(2.0)
        slots = await rig.slots("s")
        assert_once(slots)
        assert all((slot - T0_MS) % 500 == 0 and slot > T0_MS for slot in slots)
        assert all(slot <= rig.clock.now() * 1000 + 1e-3 for slot in slots)
        if not paused and overlap == "allow":
            last = int(rig.clock.now() * 1000) // 500 * 500
            assert slots == list(range(T0_MS + 500, last + 1, 500))
    finally:
        await rig.stop_all()


@settings(max_examples=60, deadline=None)
@given(STEPS, st.sampled_from(["allow", "skip", "cancel_previous"]))
def test_random_runs_fire_each_slot_at_most_once(
    steps: list[tuple[str, float]], overlap: str
) -> None:
    asyncio.run(play(steps, overlap))
