"""Trigger maths: intervals, one-shots, and cron across time-zone offset changes."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.errors import InvalidArgument
from shoal.scheduler.triggers import (
    CronTrigger,
    IntervalTrigger,
    OnceTrigger,
    cron_trigger,
    interval_trigger,
    last_slots,
    slots_between,
)


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def local(slot: int, zone: str) -> str:
    """The slot as local wall time with its offset, e.g. 2024-03-31T03:30:00+02:00."""
    return datetime.fromtimestamp(slot / 1000, ZoneInfo(zone)).isoformat()


def walk(trigger: CronTrigger, start: int, count: int) -> list[str]:
    slots = slots_between(trigger, start, start + 10 * 366 * 86_400_000, count)
    return [local(slot, trigger.timezone) for slot in slots]


# --- interval and once -------------------------------------------------------------------------


def test_interval_slots_are_anchor_plus_multiples() -> None:
    trigger = IntervalTrigger(every_ms=250, anchor_ms=10_000)
    assert trigger.next_fire(0) == 10_000
    assert trigger.next_fire(9_999) == 10_000
    assert trigger.next_fire(10_000) == 10_250
    assert trigger.next_fire(10_001) == 10_250
    assert slots_between(trigger, 10_000, 11_000, 100) == [10_250, 10_500, 10_750, 11_000]
    assert slots_between(trigger, 10_000, 11_000, 2) == [10_250, 10_500]


def test_last_slots_of_a_long_range_costs_only_what_it_returns() -> None:
    trigger = IntervalTrigger(every_ms=10, anchor_ms=0)
    day = 86_400_000
    assert last_slots(trigger, 0, 365 * day, 3) == [365 * day - 20, 365 * day - 10, 365 * day]
    assert last_slots(trigger, 0, 25, 10) == [10, 20]
    assert last_slots(trigger, 20, 25, 10) == []
    cron = cron_trigger("0 0 * * *")
    started = time.perf_counter()
    assert last_slots(cron, ms(2000, 1, 1), ms(2024, 1, 1), 2) == [
        ms(2023, 12, 31),
        ms(2024, 1, 1),
    ]
    assert time.perf_counter() - started < 2.0


def test_once_fires_once() -> None:
    trigger = OnceTrigger(5_000)
    assert trigger.next_fire(4_999) == 5_000
    assert trigger.next_fire(5_000) is None
    assert slots_between(trigger, 0, 10_000, 10) == [5_000]


@pytest.mark.parametrize("bad", [0, -1, -1000, 9, 1.5, "10", None, True, float("nan")])
def test_bad_intervals_name_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        interval_trigger(bad, 0)
    assert caught.value.field == "every_ms"


def test_ten_milliseconds_is_the_smallest_interval() -> None:
    assert interval_trigger(10, 0).every_ms == 10


# --- cron parsing -------------------------------------------------------------------------------


def test_five_fields_are_minute_hour_dom_month_dow() -> None:
    trigger = cron_trigger("15 10 * * 1")  # Mondays at 10:15 UTC
    assert trigger.next_fire(ms(2024, 1, 1)) == ms(2024, 1, 1, 10, 15)
    assert trigger.next_fire(ms(2024, 1, 1, 10, 15)) == ms(2024, 1, 8, 10, 15)


def test_six_fields_put_the_seconds_first() -> None:
    trigger = cron_trigger("*/15 30 * * * *")
    start = ms(2024, 1, 1)
    assert slots_between(trigger, start, start + 7_200_000, 5) == [
        ms(2024, 1, 1, 0, 30, 0),
        ms(2024, 1, 1, 0, 30, 15),
        ms(2024, 1, 1, 0, 30, 30),
        ms(2024, 1, 1, 0, 30, 45),
        ms(2024, 1, 1, 1, 30, 0),
    ]
    five, six = cron_trigger("7 * * * *"), cron_trigger("0 7 * * * *")
    assert walk(five, start, 5) == walk(six, start, 5)


def test_a_reversed_range_wraps_around_its_field() -> None:
    # croniter's reading, kept on purpose: `22-2` is the overnight window 22, 23, 0, 1, 2 (Vixie
    # cron and robfig refuse it; a user who writes it means the window, not an error).
    start = ms(2024, 1, 1)
    overnight = cron_trigger("0 22-2 * * *")
    assert slots_between(overnight, start, start + 2 * 86_400_000, 6) == [
        ms(2024, 1, 1, 1),
        ms(2024, 1, 1, 2),
        ms(2024, 1, 1, 22),
        ms(2024, 1, 1, 23),
        ms(2024, 1, 2, 0),
        ms(2024, 1, 2, 1),
    ]
    # A step counts from the range's start, through the wrap: 50, 55, 0, 5, 10.
    stepped = cron_trigger("50-10/5 * * * *")
    assert slots_between(stepped, start, start + 3_600_000, 5) == [
        ms(2024, 1, 1, 0, 5),
        ms(2024, 1, 1, 0, 10),
        ms(2024, 1, 1, 0, 50),
        ms(2024, 1, 1, 0, 55),
        ms(2024, 1, 1, 1, 0),
    ]
    # Friday to Monday (2024-01-05 is a Friday), and November to February.
    weekend = cron_trigger("0 0 * * 5-1")
    days = slots_between(weekend, ms(2024, 1, 4), ms(2024, 1, 20), 5)
    assert [datetime.fromtimestamp(day / 1000, UTC).strftime("%a") for day in days] == [
        "Fri",
        "Sat",
        "Sun",
        "Mon",
        "Fri",
    ]
    winter = cron_trigger("0 0 1 11-2 *")
    months = slots_between(winter, ms(2024, 3, 1), ms(2026, 1, 1), 4)
    assert months == [ms(2024, 11, 1), ms(2024, 12, 1), ms(2025, 1, 1), ms(2025, 2, 1)]


def test_croniters_seconds_last_form_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        cron_trigger("* * * * * 30")  # read as seconds first: day of week 30
    assert caught.value.field == "cron"


@pytest.mark.parametrize(
    ("alias", "same_as"),
    [("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0")],
)
def test_aliases(alias: str, same_as: str) -> None:
    start = ms(2024, 5, 17, 13, 7)
    assert walk(cron_trigger(alias), start, 3) == walk(cron_trigger(same_as), start, 3)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "* * *", "* * * * * * *", "61 * * * *", "a b c d e", "@reboot", "0 0 30 2 *", 5],
)
def test_bad_cron_names_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        cron_trigger(bad)
    assert caught.value.field == "cron"


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("R * * * * *", "the second field 'R' is random (R)"),
        ("r(0-10) * * * *", "the minute field 'r(0-10)' is random (R)"),
        ("* R/5 * * *", "the hour field 'R/5' is random (R)"),
        ("0 0 * * r", "the day-of-week field 'r' is random (R)"),
        ("H * * * *", "the minute field 'H' is hashed (H)"),
        ("0 0 h(1-28) * *", "the day-of-month field 'h(1-28)' is hashed (H)"),
    ],
)
def test_random_and_hashed_fields_are_refused_naming_the_field(expression: str, named: str) -> None:
    # croniter draws an R field anew at every computation: the slots, and so the idempotency
    # keys, would differ between calls and replicas.
    with pytest.raises(InvalidArgument) as caught:
        cron_trigger(expression)
    assert caught.value.field == "cron"
    assert named in str(caught.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "Europe", None])
def test_unknown_time_zone_names_the_field(zone: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        cron_trigger("* * * * *", zone)
    assert caught.value.field == "timezone"


def test_the_host_time_zone_does_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    start = ms(2024, 3, 30)
    expected = walk(cron_trigger("30 2 * * *", "Europe/Paris"), start, 3)
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert walk(cron_trigger("30 2 * * *", "Europe/Paris"), start, 3) == expected
    finally:
        monkeypatch.undo()
        time.tzset()


# --- cron across offset changes -----------------------------------------------------------------
# Paris: 2024-03-31 02:00 CET -> 03:00 CEST; 2024-10-27 03:00 CEST -> 02:00 CET.
# New York: 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST.


def test_paris_spring_gap_fires_a_missing_time_one_gap_later() -> None:
    trigger = cron_trigger("30 2 * * *", "Europe/Paris")
    assert walk(trigger, ms(2024, 3, 29, 12), 4) == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:30:00+02:00",  # 02:30 does not exist that night
        "2024-04-01T02:30:00+02:00",
        "2024-04-02T02:30:00+02:00",
    ]


def test_paris_spring_gap_hourly_has_no_extra_or_double_fire() -> None:
    trigger = cron_trigger("0 * * * *", "Europe/Paris")
    assert walk(trigger, ms(2024, 3, 30, 23, 30), 4) == [
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T04:00:00+02:00",
        "2024-03-31T05:00:00+02:00",
    ]


def test_paris_fall_back_fixed_time_fires_once() -> None:
    trigger = cron_trigger("30 2 * * *", "Europe/Paris")
    assert walk(trigger, ms(2024, 10, 25, 12), 3) == [
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",  # the first 02:30 only
        "2024-10-28T02:30:00+01:00",
    ]


def test_paris_fall_back_wildcard_hour_keeps_its_cadence() -> None:
    trigger = cron_trigger("*/30 * * * *", "Europe/Paris")
    assert walk(trigger, ms(2024, 10, 26, 23, 15), 6) == [
        "2024-10-27T01:30:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:00:00+01:00",  # the repeated hour fires again: every 30 real minutes
        "2024-10-27T02:30:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]


def test_new_york_spring_gap() -> None:
    trigger = cron_trigger("0 2 * * *", "America/New_York")
    assert walk(trigger, ms(2024, 3, 9, 12), 3) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:00:00-04:00",
        "2024-03-12T02:00:00-04:00",
    ]


def test_new_york_fall_back() -> None:
    trigger = cron_trigger("*/30 1 * * *", "America/New_York")
    assert walk(trigger, ms(2024, 11, 2, 12), 4) == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",  # 01:00-01:59 repeats; hour 1 is fixed: once
        "2024-11-04T01:00:00-05:00",
        "2024-11-04T01:30:00-05:00",
    ]


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Paris", ms(2024, 3, 31, 0, 30)),
        ("Europe/Paris", ms(2024, 10, 27, 0, 30)),
        ("America/New_York", ms(2024, 3, 10, 6, 30)),
        ("America/New_York", ms(2024, 11, 3, 5, 30)),
    ],
)
def test_sub_hour_cadence_in_real_time_is_unbroken_by_either_change(zone: str, start: int) -> None:
    trigger = cron_trigger("*/20 * * * * *", zone)
    slots = slots_between(trigger, start, start + 2 * 3_600_000, 1000)
    assert len(slots) == 360
    assert {b - a for a, b in itertools.pairwise(slots)} == {20_000}


# --- properties ---------------------------------------------------------------------------------

EXPRESSIONS = ["*/7 * * * *", "30 2 * * *", "0 */2 * * *", "15 1,2,3 * * *", "*/45 * * * * *"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
INSTANTS = st.integers(min_value=ms(2020, 1, 1), max_value=ms(2030, 1, 1))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(ZONES), INSTANTS, st.floats(0, 1))
def test_next_fire_is_the_first_slot_after(expr: str, zone: str, after: int, where: float) -> None:
    trigger = cron_trigger(expr, zone)
    slot = trigger.next_fire(after)
    assert slot is not None and slot > after and slot % 1000 == 0
    assert slot - after <= 2 * 86_400_000
    # Any point between `after` and the slot sees the same next slot: none was jumped over.
    middle = after + int((slot - 1 - after) * where)
    assert trigger.next_fire(middle) == slot


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(EXPRESSIONS), INSTANTS)
def test_utc_matches_croniter(expr: str, after: int) -> None:
    fields = expr.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=after)
    expected = croniter(" ".join(fields), start, second_at_beginning=True).get_next(datetime)
    assert cron_trigger(expr).next_fire(after) == int(expected.timestamp() * 1000)
