"""One fire of a schedule, shared by the runner (slots) and the service (trigger-now, backfill)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from shoal.core.errors import Conflict, NotFound
from shoal.core.events import Event
from shoal.core.model import Job
from shoal.core.ports import Store
from shoal.core.service import QueueService
from shoal.scheduler.model import Overlap, Schedule, decode_schedule, encode_schedule

logger = logging.getLogger(__name__)

#: A slot's key also dedupes against finished jobs created this long before the slot itself,
#: so a slot yields one job for as long as its job is kept (restarts, replicas, backfills,
#: clock steps of up to a day back); see `dedupe_window`.
DEDUPE_MARGIN = 86_400.0
#: Tries of `swap_schedule`; each failed one means another writer's change went in meanwhile.
SWAP_ATTEMPTS = 10
#: Kinds of the events that tell a runner to reload a schedule.
CHANGE_KINDS = frozenset(
    {
        "schedule.created",
        "schedule.updated",
        "schedule.deleted",
        "schedule.paused",
        "schedule.resumed",
    }
)


def dedupe_window(now: float, slot_ms: int) -> float:
    """A window reaching back before the slot: any job made for the slot since then counts."""
    return max(now - slot_ms / 1000, 0.0) + DEDUPE_MARGIN


@dataclass(frozen=True, slots=True)
class Fired:
    """What a fire did: the job (None when skipped) and whether this call created it."""

    slot: int
    job: Job | None
    created: bool

    @property
    def skipped(self) -> bool:
        """The overlap policy skipped the slot."""
        return self.job is None


async def previous_active(queue: QueueService, schedule: Schedule) -> Job | None:
    """The previous fire's job if it has not finished, else None."""
    if schedule.last_job_id is None:
        return None
    job = await queue.store.get_job(schedule.namespace, schedule.last_job_id)
    return job if job is not None and not job.is_terminal else None


async def fire(
    queue: QueueService,
    schedule: Schedule,
    slot: int,
    key: str | None = None,
    run_at: float | None = None,
) -> Fired:
    """Apply the overlap policy, then enqueue the slot's job under its idempotency key, to
    run at `run_at` (at once when None).
    """
    if schedule.overlap is not Overlap.ALLOW:
        previous = await previous_active(queue, schedule)
        if previous is not None and schedule.overlap is Overlap.SKIP:
            logger.info(
                "schedule %s skipped slot %d: job %s still active",
                schedule.id,
                slot,
                previous.id,
                extra={"event": "schedule.skipped", "schedule_id": schedule.id, "slot": slot},
            )
            return Fired(slot, None, False)
        if previous is not None:
            try:
                await queue.cancel(schedule.namespace, previous.id)
            except (Conflict, NotFound):
                pass  # it finished (or went) meanwhile: nothing left to cancel
    now = queue.clock.now()
    request = schedule.enqueue_request(
        key or schedule.idempotency_key(slot), dedupe_window(now, slot), run_at
    )
    result = await queue.enqueue(request)
    logger.debug(
        "schedule %s fired slot %d: job %s",
        schedule.id,
        slot,
        result.job.id,
        extra={
            "event": "schedule.fired",
            "schedule_id": schedule.id,
            "slot": slot,
            "job_id": result.job.id,
            "created": result.created,
        },
    )
    if queue.events.has_subscribers:
        queue.events.publish(
            Event(
                "schedule.fired",
                schedule.namespace,
                now,
                job_id=result.job.id,
                queue=schedule.queue,
                task=schedule.task,
                data={"schedule_id": schedule.id, "slot": str(slot)},
            )
        )
    return Fired(slot, result.job, result.created)


async def fire_many(queue: QueueService, schedule: Schedule, slots: list[int]) -> list[Fired]:
    """Enqueue the jobs of many slots in one store call, without an overlap check (catch-up
    with `allow`, backfill). One dedupe window, reaching back before the earliest slot.
    """
    if not slots:
        return []
    window = dedupe_window(queue.clock.now(), min(slots))
    requests = [schedule.enqueue_request(schedule.idempotency_key(s), window) for s in slots]
    results = await queue.enqueue_many(requests)
    return [Fired(s, r.job, r.created) for s, r in zip(slots, results, strict=True)]


def with_next_due(schedule: Schedule) -> Schedule:
    """The schedule with `next_due_ms` computed from its cursor (None when paused or over)."""
    slot = None if schedule.paused else schedule.next_slot(schedule.resume_point())
    return replace(schedule, next_due_ms=None if slot is None else schedule.due_ms(slot))


async def swap_schedule(
    store: Store, namespace: str, schedule_id: str, change: Callable[[Schedule], Schedule]
) -> Schedule | None:
    """Store `change` of the stored schedule by compare-and-swap, so that no other writer's
    change (a replica's fire, a pause, an edit, a removal) made between the read and the write
    is lost: if one got in, re-read and apply `change` again. None if the schedule is gone;
    `Conflict` if it kept changing under every attempt.
    """
    for _ in range(SWAP_ATTEMPTS):
        record = await store.get_schedule(namespace, schedule_id)
        if record is None:
            return None
        changed = change(decode_schedule(record))
        new_record = encode_schedule(changed)
        if new_record == record or await store.replace_schedule(new_record, record):
            return changed
    raise Conflict(f"schedule {schedule_id} changed at every attempt to write it; try again")


async def save_progress(
    store: Store, namespace: str, schedule_id: str, fired: Fired | None, cursor: int | None
) -> Schedule | None:
    """Record a fire (and the handled cursor) on the stored schedule, keeping whatever else
    was changed since (see `swap_schedule`); None if the schedule was removed.
    """

    def progressed(current: Schedule) -> Schedule:
        if cursor is not None and (current.cursor_ms is None or cursor > current.cursor_ms):
            current = replace(current, cursor_ms=cursor)
        if fired is not None and fired.job is not None:
            if current.last_fire_ms is None or fired.slot >= current.last_fire_ms:
                current = replace(current, last_fire_ms=fired.slot, last_job_id=fired.job.id)
        return with_next_due(current)

    return await swap_schedule(store, namespace, schedule_id, progressed)
