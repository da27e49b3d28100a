"""Trigger maths: when a schedule fires. Pure functions of time, no I/O, no clock.

Every time here is an integer number of milliseconds since the epoch (a *slot*), so slots are
exact, compare without rounding, and give stable idempotency keys (`schedule:<id>:<slot>`).
Each trigger answers `next_fire(after)`: the first slot strictly after `after`, or None.

Cron semantics, chosen and documented here:

* 5 fields (`min hour dom month dow`) or 6 fields with the **seconds first**
  (`sec min hour dom month dow`), as Quartz, Spring, robfig/cron `WithSeconds` and croniter's
  `second_at_beginning=True` read them. croniter's own 6-field form (seconds last) is not
  accepted, and neither is a 7th (year) field. The aliases `@yearly`, `@annually`,
  `@monthly`, `@weekly`, `@daily`, `@midnight` and `@hourly` are accepted. croniter's random
  (`R`) and hashed (`H`) fields are refused: a slot must be the same at every computation.
* A reversed range wraps around its field (`22-2` is hours 22, 23, 0, 1, 2; `50-10/5` is
  minutes 50, 55, 0, 5, 10), as croniter reads it; Vixie cron and robfig refuse it.
* The expression matches *wall-clock* time in its time zone (IANA name, default UTC).
* Spring-forward gap: a wall time that does not exist fires at the instant it would have been
  had the clock not jumped (PEP 495's `fold=0` reading: 02:30 in Paris on the last Sunday of
  March fires at 03:30 CEST). A gap slot that lands on a regular slot is the same slot.
* Fall-back repeat: a wall time that occurs twice fires once, at its first occurrence, unless
  the hour field starts with `*` (`*`, `*/2`): such hourly-or-finer expressions keep their
  cadence in real time and fire at both occurrences. This is Vixie cron's rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from shoal.core.errors import InvalidArgument

__all__ = [
    "MIN_INTERVAL_MS",
    "CronTrigger",
    "IntervalTrigger",
    "OnceTrigger",
    "Trigger",
    "cron_trigger",
    "interval_trigger",
    "last_slots",
    "once_trigger",
    "slots_between",
]

#: The shortest interval accepted: below it the timer's own lateness would dominate.
MIN_INTERVAL_MS = 10
#: The longest interval accepted (about 100 years).
MAX_INTERVAL_MS = 100 * 366 * 86_400_000
_MAX_INSTANT_S = 253_402_300_799 - 2 * 86_400  # 9999-12-29: datetime's range, with room for offsets
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: The fields of the 6-field (seconds first) form, by position.
_CRON_FIELDS = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
#: croniter's own extensions whose values are not fixed by the expression: `R`, random at
#: every computation, and `H`, hashed from an id. No field value or name starts with h or r.
_UNFIXED = {"r": "random (R)", "h": "hashed (H)"}
_EPOCH = datetime(1970, 1, 1)
_DAY = 86_400
#: Steps of the scan for offset changes; two changes within one step would be missed.
_SCAN_STEP = 6 * 3600
#: How many offset segments a search may cross before it gives up (about 100 years of DST).
_MAX_SEGMENTS = 250


@dataclass(frozen=True, slots=True)
class IntervalTrigger:
    """Fires at `anchor_ms + k * every_ms` for every k >= 0."""

    every_ms: int
    anchor_ms: int

    def next_fire(self, after: int) -> int | None:
        """The first slot strictly after `after` (milliseconds)."""
        if after < self.anchor_ms:
            return self.anchor_ms
        steps = (after - self.anchor_ms) // self.every_ms + 1
        return self.anchor_ms + steps * self.every_ms


@dataclass(frozen=True, slots=True)
class OnceTrigger:
    """Fires once, at `at_ms`."""

    at_ms: int

    def next_fire(self, after: int) -> int | None:
        """`at_ms` if it is after `after`, else None."""
        return self.at_ms if self.at_ms > after else None


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """Fires when wall-clock time in `timezone` matches `expression` (see the module doc)."""

    expression: str
    timezone: str = "UTC"

    def next_fire(self, after: int) -> int | None:
        """The first slot strictly after `after` (milliseconds), or None if there is none."""
        fields = _normalise(self.expression)
        seconds = _next_instant(fields, _zone(self.timezone), after // 1000)
        return None if seconds is None else seconds * 1000


Trigger = IntervalTrigger | CronTrigger | OnceTrigger


def slots_between(trigger: Trigger, after: int, until: int, limit: int) -> list[int]:
    """The slots `s` with `after < s <= until`, in order, at most `limit` of them."""
    out: list[int] = []
    for slot in _iter_slots(trigger, after, until):
        if len(out) >= limit:
            break
        out.append(slot)
    return out


def last_slots(trigger: Trigger, after: int, until: int, count: int) -> list[int]:
    """The latest `count` slots `s` with `after < s <= until`, in order.

    Cost grows with `count`, not with the length of the range: the search starts near `until`
    and widens its window until it holds enough slots.
    """
    if count <= 0 or until <= after:
        return []
    if isinstance(trigger, IntervalTrigger):
        first = trigger.next_fire(after)
        if first is None or first > until:
            return []
        last_k = (until - trigger.anchor_ms) // trigger.every_ms
        first_k = max((first - trigger.anchor_ms) // trigger.every_ms, last_k - count + 1)
        return [trigger.anchor_ms + k * trigger.every_ms for k in range(first_k, last_k + 1)]
    window = 60_000
    while True:
        start = max(after, until - window)
        found = list(_iter_slots(trigger, start, until))
        if len(found) >= count or start == after:
            return found[-count:]
        window *= 4


def _iter_slots(trigger: Trigger, after: int, until: int) -> Iterator[int]:
    slot = trigger.next_fire(after)
    while slot is not None and slot <= until:
        yield slot
        slot = trigger.next_fire(slot)


# --- construction with validation ---------------------------------------------------------------


def interval_trigger(every_ms: object, anchor_ms: int, field: str = "every_ms") -> IntervalTrigger:
    """An interval trigger, or `InvalidArgument` naming `field` for a bad interval."""
    if isinstance(every_ms, bool) or not isinstance(every_ms, int | float):
        raise InvalidArgument(field, "must be a whole number of milliseconds")
    if not math.isfinite(every_ms) or every_ms != int(every_ms):
        raise InvalidArgument(field, "must be a whole number of milliseconds")
    if every_ms <= 0:
        raise InvalidArgument(field, "must be positive")
    if every_ms < MIN_INTERVAL_MS:
        raise InvalidArgument(field, f"must be at least {MIN_INTERVAL_MS} ms")
    if every_ms > MAX_INTERVAL_MS:
        raise InvalidArgument(field, "must be at most 100 years")
    return IntervalTrigger(int(every_ms), anchor_ms)


def once_trigger(at_ms: int) -> OnceTrigger:
    """A one-shot trigger."""
    return OnceTrigger(at_ms)


def cron_trigger(expression: object, timezone: object = "UTC") -> CronTrigger:
    """A cron trigger, or `InvalidArgument` naming `cron` or `timezone`."""
    if not isinstance(timezone, str) or not timezone:
        raise InvalidArgument("timezone", "must be an IANA time zone name such as Europe/Paris")
    try:
        _zone(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument("timezone", f"unknown time zone {timezone!r}") from None
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgument("cron", "must be a cron expression of 5 or 6 fields")
    text = " ".join(expression.split())
    fields = _normalise(text)
    if fields is None:
        raise InvalidArgument(
            "cron",
            f"{expression!r} must have 5 fields (min hour dom month dow) or 6 with seconds "
            "first (sec min hour dom month dow)",
        )
    _refuse_unfixed_fields(expression, fields)
    try:
        croniter(fields, _EPOCH, second_at_beginning=True).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidArgument("cron", f"{expression!r} never matches a date") from None
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidArgument("cron", f"{expression!r} is not valid: {exc}") from None
    return CronTrigger(text, timezone)


def _refuse_unfixed_fields(expression: str, fields: str) -> None:
    """`InvalidArgument` for a field whose slots croniter would draw anew at every computation
    (`R`) or derive from an id (`H`): slots must be the same in every process and every call,
    or their idempotency keys would not make one job per slot.
    """
    for name, value in zip(_CRON_FIELDS, fields.split(), strict=True):
        kind = _UNFIXED.get(value[:1].lower())
        if kind is not None:
            raise InvalidArgument(
                "cron",
                f"{expression!r}: the {name} field {value!r} is {kind}, which is not supported;"
                " give its values",
            )


# --- cron across offset changes ------------------------------------------------------------------


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def _normalise(expression: str) -> str | None:
    """The 6-field (seconds first) form of a 5- or 6-field expression, or None."""
    text = _ALIASES.get(expression.strip().lower(), expression)
    fields = text.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6:
        return None
    return " ".join(fields)


def _offset(zone: ZoneInfo, instant: int) -> int:
    delta = datetime.fromtimestamp(instant, UTC).astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _next_wall(fields: str, after_wall: int) -> int | None:
    """The first naive wall time (seconds) matching `fields` strictly after `after_wall`."""
    try:
        found = croniter(
            fields, _EPOCH + timedelta(seconds=after_wall), second_at_beginning=True
        ).get_next(datetime)
    except (CroniterBadDateError, OverflowError, ValueError):
        return None
    return int((found - _EPOCH).total_seconds())


def _next_change(zone: ZoneInfo, start: int, limit: int) -> int | None:
    """The first instant in (start, limit] whose offset differs from `start`'s, or None."""
    base = _offset(zone, start)
    low = start
    while low < limit:
        high = min(low + _SCAN_STEP, limit)
        if _offset(zone, high) != base:
            while high - low > 1:  # binary search to the exact second of the change
                middle = (low + high) // 2
                if _offset(zone, middle) == base:
                    low = middle
                else:
                    high = middle
            return high
        low = high
    return None


def _segment_start(zone: ZoneInfo, instant: int) -> tuple[int, int]:
    """The start of the constant-offset stretch holding `instant` (looking back one day at
    most) and the offset in force just before it.
    """
    base = _offset(zone, instant)
    earliest = instant - _DAY
    high = instant
    while high > earliest:
        low = max(high - _SCAN_STEP, earliest)
        if _offset(zone, low) != base:
            change = _next_change(zone, low, high)
            assert change is not None  # the offsets at low and high differ
            return change, _offset(zone, change - 1)
        high = low
    return earliest, base


def _next_instant(fields: str | None, zone: ZoneInfo, after: int) -> int | None:
    """The first instant (seconds) strictly after `after` whose wall time matches `fields`,
    walking the stretches of constant UTC offset (see the module doc for gaps and repeats).
    """
    if fields is None or after >= _MAX_INSTANT_S:
        return None
    every_hour = fields.split()[2].startswith("*")
    start, before = _segment_start(zone, after)
    low = after  # strict lower bound on the answer
    for _ in range(_MAX_SEGMENTS):
        offset = _offset(zone, start)
        candidates: list[int] = []
        regular_low = low
        if before > offset and not every_hour:
            # Fall-back: the repeated wall times fired in the previous stretch.
            regular_low = max(low, start + before - offset - 1)
        wall = _next_wall(fields, regular_low + offset)
        regular = None if wall is None else wall - offset
        if before < offset:
            # Spring-forward: wall times in the gap fire with the old offset.
            gap_wall = _next_wall(fields, max(low, start - 1) + before)
            if gap_wall is not None and gap_wall < start + offset:
                candidates.append(gap_wall - before)
        if regular is None:  # croniter found no match within its horizon: none will come
            return min(candidates, default=None)
        end = _next_change(zone, max(low, start), regular)
        if end is None or regular < end:
            candidates.append(regular)
        if candidates:
            return min(candidates)
        assert end is not None
        start, before, low = end, offset, end - 1
    return None
