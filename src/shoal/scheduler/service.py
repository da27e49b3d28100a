"""`ScheduleService`: define, inspect and steer schedules over a `Store` and a `QueueService`.

The service stores definitions and announces each change on the queue service's event bus
(`schedule.created`, `.updated`, `.deleted`, `.paused`, `.resumed`), which is how a
`SchedulerRunner` in the same process learns to recompute its next fire at once. Manual fires
(`trigger_now`, `backfill`) enqueue here directly, under the same idempotency keys as the runner.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from shoal.core.errors import Conflict, InvalidArgument, NotFound
from shoal.core.events import Event
from shoal.core.ids import new_job_id
from shoal.core.ports import Enqueued, Store
from shoal.core.service import QueueService
from shoal.core.validation import check_name
from shoal.scheduler._firing import (
    fire,
    fire_many,
    save_progress,
    swap_schedule,
    with_next_due,
)
from shoal.scheduler.model import (
    Overlap,
    Schedule,
    ScheduleInput,
    build_schedule,
    decode_schedule,
    encode_schedule,
)
from shoal.scheduler.triggers import IntervalTrigger, slots_between

__all__ = ["MAX_BACKFILL", "ScheduleService"]

logger = logging.getLogger(__name__)

#: The most slots one backfill call may enqueue.
MAX_BACKFILL = 10_000


class ScheduleService:
    """Schedules of every namespace, kept in `queue.store`, firing through `queue`."""

    def __init__(self, queue: QueueService) -> None:
        self.queue = queue

    @property
    def store(self) -> Store:
        """The store that keeps the schedules (the queue service's)."""
        return self.queue.store

    async def add(self, data: ScheduleInput) -> Schedule:
        """Create a schedule. `InvalidArgument` for a bad field (nothing is stored), `Conflict`
        if the id is taken in the namespace.
        """
        schedule_id = data.id if data.id is not None else new_job_id()
        schedule = with_next_due(
            build_schedule(data, schedule_id, self.queue.clock.now(), self.queue.settings.limits)
        )
        await self.store.create_schedule(encode_schedule(schedule))  # `Conflict` if taken
        self._announce("schedule.created", schedule)
        return schedule

    async def update(self, namespace: str, schedule_id: str, data: ScheduleInput) -> Schedule:
        """Replace a schedule's definition; its firing state and paused flag are kept.

        A changed trigger (or start/end) counts slots anew from now: no catch-up for the
        slots the old definition would have had. An interval whose length is unchanged keeps
        its phase.
        """
        schedule = await self._swap(namespace, schedule_id, partial(self._updated, data=data))
        self._announce("schedule.updated", schedule)
        return schedule

    def _updated(self, current: Schedule, data: ScheduleInput) -> Schedule:
        """`current` with the definition `data` (see `update`)."""
        if data.id is not None and data.id != current.id:
            raise InvalidArgument("id", "an update cannot rename a schedule")
        data = replace(data, namespace=current.namespace)  # its own, whatever `data` says
        new = build_schedule(data, current.id, self.queue.clock.now(), self.queue.settings.limits)
        trigger = new.trigger
        old = current.trigger
        if (
            isinstance(trigger, IntervalTrigger)
            and isinstance(old, IntervalTrigger)
            and old.every_ms == trigger.every_ms
            and data.start_at is None
            and current.start_ms is None
        ):
            trigger = old
        timing_changed = (trigger, new.start_ms, new.end_ms) != (
            current.trigger,
            current.start_ms,
            current.end_ms,
        )
        return with_next_due(
            replace(
                new,
                trigger=trigger,
                created_at=current.created_at,
                since_ms=new.since_ms if timing_changed else current.since_ms,
                paused=current.paused,
                cursor_ms=current.cursor_ms,
                last_fire_ms=current.last_fire_ms,
                last_job_id=current.last_job_id,
                extra=current.extra,
            )
        )

    async def put(self, data: ScheduleInput) -> Schedule:
        """Create the schedule `data.id`, or update it if it exists (declared schedules, such
        as those of the configuration file, applied at every start).
        """
        if data.id is None:
            raise InvalidArgument("id", "put needs the schedule's id")
        if await self.store.get_schedule(data.namespace, data.id) is None:
            try:
                return await self.add(data)
            except Conflict:
                pass  # created meanwhile (another replica applying the same declarations)
        return await self.update(data.namespace, data.id, data)

    async def get(self, namespace: str, schedule_id: str) -> Schedule:
        """The schedule, or `NotFound`."""
        record = await self.store.get_schedule(namespace, schedule_id)
        if record is None:
            raise NotFound(f"schedule {schedule_id} not found in namespace {namespace!r}")
        return decode_schedule(record)

    async def list(self, namespace: str | None = None) -> list[Schedule]:
        """Schedules of one namespace (or all), by id."""
        if namespace is not None:
            check_name("namespace", namespace)
        return [decode_schedule(record) for record in await self.store.list_schedules(namespace)]

    async def remove(self, namespace: str, schedule_id: str) -> None:
        """Delete a schedule (its jobs stay). `NotFound` if there is none."""
        schedule = await self.get(namespace, schedule_id)
        await self.store.delete_schedule(namespace, schedule_id)
        self._announce("schedule.deleted", schedule)

    async def pause(self, namespace: str, schedule_id: str) -> Schedule:
        """Stop firing; idempotent."""
        schedule = await self._swap(
            namespace, schedule_id, lambda current: with_next_due(replace(current, paused=True))
        )
        self._announce("schedule.paused", schedule)
        return schedule

    async def resume(self, namespace: str, schedule_id: str) -> Schedule:
        """Fire again from the next slot; the slots of the pause are not caught up."""
        current = await self.get(namespace, schedule_id)
        if not current.paused:
            return current
        now_ms = int(self.queue.clock.now() * 1000)

        def resumed(stored: Schedule) -> Schedule:
            if not stored.paused:
                return stored  # resumed meanwhile: its `since_ms` stands
            return with_next_due(replace(stored, paused=False, since_ms=now_ms))

        schedule = await self._swap(namespace, schedule_id, resumed)
        self._announce("schedule.resumed", schedule)
        return schedule

    async def trigger_now(self, namespace: str, schedule_id: str) -> Enqueued:
        """Enqueue the schedule's job now, outside its slots (even while paused).

        The overlap policy is not applied (this is an explicit request), but the job becomes
        the "previous fire" that the next slot's overlap check looks at.
        """
        schedule = await self.get(namespace, schedule_id)
        now_ms = int(self.queue.clock.now() * 1000)
        unforced = replace(schedule, overlap=Overlap.ALLOW)
        fired = await fire(self.queue, unforced, now_ms, f"schedule:{schedule.id}:manual:{now_ms}")
        await save_progress(self.store, namespace, schedule_id, fired, None)
        assert fired.job is not None
        return Enqueued(fired.job, fired.created)

    async def backfill(
        self, namespace: str, schedule_id: str, start: float, end: float
    ) -> builtins.list[Enqueued]:
        """Enqueue one job for every slot in [start, end] (POSIX times, end not in the
        future) and within the schedule's start and end, at most `MAX_BACKFILL`. A slot that
        already has a job (fired, or an earlier backfill) keeps it: the result says
        `created=False` for it.
        """
        schedule = await self.get(namespace, schedule_id)
        now = self.queue.clock.now()
        start_ms, end_ms = int(start * 1000), int(end * 1000)
        if end_ms < start_ms:
            raise InvalidArgument("end", "must not be before start")
        if end > now:
            raise InvalidArgument("end", "must not be in the future")
        # Within the schedule's own start and end first: the bound on the count applies to
        # the slots it has, not to those before its start (which would crowd them out).
        if schedule.start_ms is not None:
            start_ms = max(start_ms, schedule.start_ms)
        if schedule.end_ms is not None:
            end_ms = min(end_ms, schedule.end_ms)
        slots = slots_between(schedule.trigger, start_ms - 1, end_ms, MAX_BACKFILL + 1)
        if len(slots) > MAX_BACKFILL:
            raise InvalidArgument("end", f"the range holds more than {MAX_BACKFILL} slots")
        fired = await fire_many(self.queue, schedule, slots)
        results = [Enqueued(item.job, item.created) for item in fired if item.job is not None]
        logger.info(
            "schedule %s backfilled %d slots (%d new)",
            schedule_id,
            len(slots),
            sum(item.created for item in results),
            extra={"event": "schedule.backfilled", "schedule_id": schedule_id},
        )
        return results

    async def _swap(
        self, namespace: str, schedule_id: str, change: Callable[[Schedule], Schedule]
    ) -> Schedule:
        """Apply `change` to the stored schedule without losing a concurrent write (the
        runner's progress, another edit); `NotFound` if there is none.
        """
        schedule = await swap_schedule(self.store, namespace, schedule_id, change)
        if schedule is None:
            raise NotFound(f"schedule {schedule_id} not found in namespace {namespace!r}")
        return schedule

    def _announce(self, kind: str, schedule: Schedule) -> None:
        logger.info(
            "%s %s",
            kind,
            schedule.id,
            extra={"event": kind, "schedule_id": schedule.id, "namespace": schedule.namespace},
        )
        self.queue.publish_everywhere(
            Event(
                kind,
                schedule.namespace,
                self.queue.clock.now(),
                queue=schedule.queue,
                task=schedule.task,
                data={"schedule_id": schedule.id},
            )
        )
