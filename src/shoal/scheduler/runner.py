"""`SchedulerRunner`: turns due slots into jobs, while it holds the store's leader lease.

It keeps a heap of (due time, schedule) and sleeps until the earliest, waking early by
`early_wake` and yielding to the loop until the slot is reached, so a job is enqueued within a
fraction of a millisecond of its slot rather than a timer tick late. A change made through
`ScheduleService` (an event on the bus) wakes it to recompute; a slow resync picks up changes
made by other processes.

Firing ahead: a schedule whose overlap policy is `allow` fires the service's `lookahead` before
its slot, with the slot as the job's `run_at`. A worker that asked for the lookahead leases the
job then and starts it at the slot on its own clock, so the network hops to it do not make the
job late. Other policies look at the previous job, so they fire at the slot itself.

Leadership keeps the work on one replica, but exactly-once per slot does not depend on it:
every fire carries the idempotency key `schedule:<id>:<slot>` with a dedupe window, so two
runners that both believe they lead (a paused process, a lease that just changed hands) still
make one job per slot.

Catch-up: the slots that fell due while no runner tracked a schedule (downtime, a leader
change, a schedule written by another process) are handled by the schedule's catch-up policy
when a runner takes it up; so are slots found more than `misfire_grace` late (a stalled loop,
a wall clock stepped forward). Other slots are fired in order, each once. A wall clock stepped
back delays the next fire until the wall clock reaches it; slots already handled stay handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

from shoal.core.errors import ShoalError, StorageError
from shoal.core.events import Subscription
from shoal.core.ids import new_token
from shoal.core.ports import ScheduleRecord
from shoal.core.service import QueueService
from shoal.scheduler._firing import CHANGE_KINDS, Fired, fire, fire_many, save_progress
from shoal.scheduler.model import CatchUp, Overlap, Schedule, decode_schedule
from shoal.scheduler.triggers import last_slots

__all__ = ["RunnerSettings", "SchedulerRunner"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]
#: After a store error, reload every schedule this soon (seconds).
_RETRY_AFTER = 1.0
#: Float slack when comparing clock readings with slots (the clock's sum of small steps).
_EPS = 1e-5


def _reached(due_ms: float, now: float) -> bool:
    """Whether the clock reading `now` (seconds) has reached `due_ms`; the one comparison."""
    return due_ms <= now * 1000 + _EPS * 1000


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How a runner leads and how precisely it fires."""

    leader_name: str = "scheduler"
    #: The lease lasts this long without renewal; a follower takes over after it.
    lease_ttl: float = 10.0
    #: The leader renews (and a follower retries) this often.
    renew_interval: float = 2.0
    #: Reload every schedule this often, to see changes made by other processes.
    resync_interval: float = 30.0
    #: Wake this long before a slot and yield to the loop until it; 0 relies on the timer alone.
    early_wake: float = 0.002
    #: A slot found more than this late is handled by its schedule's catch-up policy.
    misfire_grace: float = 1.0


class SchedulerRunner:
    """Fires the schedules of the store behind `queue` while it leads; see the module doc."""

    def __init__(
        self, queue: QueueService, holder: str | None = None, settings: RunnerSettings | None = None
    ) -> None:
        self.queue = queue
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{new_token()[:8]}"
        self.settings = settings or RunnerSettings()
        #: Whether this runner holds the leader lease.
        self.is_leader = False
        #: Jobs this runner created (fires deduplicated against an existing job not counted).
        self.created = 0
        self._heap: list[tuple[float, int, Key, int]] = []
        self._entries: dict[Key, int] = {}
        self._tracked: set[Key] = set()
        self._seq = 0
        self._dirty: set[Key] = set()
        self._resync = False
        self._failed = False
        self._unreadable: dict[Key, str] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Lead (or wait to lead) and fire until `stop()`; releases the lease on the way out."""
        subscription = self.queue.events.subscribe(lambda e: True, 1024, CHANGE_KINDS)
        watcher = asyncio.create_task(self._watch(subscription))
        try:
            while not self._stopping.is_set():
                # Changes matter only to a leader. Cleared before the lease attempt, not after
                # it: a `stop()` during the attempt must still cut the follower's wait short.
                self._wake.clear()
                if await self._acquire():
                    await self._lead()
                else:
                    await self._wait(self.settings.renew_interval)
        finally:
            subscription.close()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            if self.is_leader:
                self.is_leader = False
                with contextlib.suppress(ShoalError):
                    await self.queue.store.release_leader(self.settings.leader_name, self.holder)

    def stop(self) -> None:
        """Ask `run()` to return."""
        self._stopping.set()
        self._wake.set()

    async def _acquire(self) -> bool:
        clock = self.queue.clock
        try:
            return await self.queue.store.try_acquire_leader(
                self.settings.leader_name, self.holder, self.settings.lease_ttl, clock.now()
            )
        except ShoalError:
            logger.exception("leader lease failed", extra={"event": "scheduler.lease_error"})
            return False

    async def _watch(self, subscription: Subscription) -> None:
        async for event in subscription:
            # Only a leader reloads changed schedules; one that takes the lead loads them all
            # (`_lead`), so a follower keeping them would only grow its set for ever.
            if self.is_leader:
                self._dirty.add((event.namespace, event.data.get("schedule_id", "")))
            if subscription.dropped:
                self._resync = True
            self._wake.set()

    # --- leading ----------------------------------------------------------------------------

    async def _lead(self) -> None:
        clock, settings = self.queue.clock, self.settings
        self.is_leader = True
        logger.info("scheduler %s leads", self.holder, extra={"event": "scheduler.leader_acquired"})
        self._heap, self._entries, self._tracked, self._dirty = [], {}, set(), set()
        next_renew = clock.now() + settings.renew_interval
        next_resync = clock.now()
        while not self._stopping.is_set():
            now = clock.now()
            if now >= next_renew:
                if not await self._acquire():
                    self.is_leader, self._dirty = False, set()
                    logger.warning(
                        "scheduler %s lost the lead",
                        self.holder,
                        extra={"event": "scheduler.leader_lost"},
                    )
                    return
                next_renew = now + settings.renew_interval
            if self._resync or now >= next_resync:
                self._resync, self._dirty = False, set()
                await self._guard(self._load_all())
                next_resync = clock.now() + settings.resync_interval
            while self._dirty:
                await self._guard(self._reload(self._dirty.pop()))
            await self._fire_due(next_renew)
            if self._failed:
                # A store error left some schedule without its next fire: reload all soon.
                self._failed = False
                next_resync = min(next_resync, clock.now() + _RETRY_AFTER)
            wake_ms = min(next_renew, next_resync) * 1000
            if self._heap:
                wake_ms = min(wake_ms, self._heap[0][0])
            await self._wait_until(wake_ms)

    async def _guard(self, step: Coroutine[Any, Any, None]) -> None:
        """Run one step; a store failure is logged, the loop goes on and retries soon."""
        try:
            await step
        except ShoalError:
            self._failed = True
            logger.exception("scheduler step failed", extra={"event": "scheduler.error"})

    async def _reload(self, key: Key) -> None:
        await self._load(key, await self.queue.store.get_schedule(*key))

    async def _load_all(self) -> None:
        records = await self.queue.store.list_schedules(None)
        present = {(record.namespace, record.id) for record in records}
        for key in self._tracked - present:
            self._untrack(key)
        for record in records:
            await self._guard(self._load((record.namespace, record.id), record))

    async def _load(self, key: Key, record: ScheduleRecord | None) -> None:
        """(Re)compute a schedule's next fire; one newly taken up first gets its catch-up."""
        schedule = self._readable(key, record)
        if schedule is None:
            return
        if key not in self._tracked:
            schedule = await self._catch_up(schedule)
            self._tracked.add(key)
        self._push_next(key, schedule)

    async def _catch_up(self, schedule: Schedule) -> Schedule:
        now_ms = math.floor(self.queue.clock.now() * 1000 + _EPS)
        after = schedule.resume_point()
        if schedule.start_ms is not None:
            after = max(after, schedule.start_ms - 1)
        until = now_ms if schedule.end_ms is None else min(now_ms, schedule.end_ms)
        first = schedule.next_slot(after)
        if first is None or first > now_ms:
            return schedule
        count = {CatchUp.SKIP: 0, CatchUp.ONE: 1, CatchUp.ALL: schedule.catch_up_limit}
        slots = last_slots(schedule.trigger, after, until, count[schedule.catch_up])
        last: Fired | None = None
        if schedule.overlap is Overlap.ALLOW:
            fired = await fire_many(self.queue, schedule, slots)
            self.created += sum(item.created for item in fired)
            last = fired[-1] if fired else None
        else:
            for slot in slots:  # each fire looks at the previous one
                last = await self._fire(schedule, slot)
                if last.job is not None:
                    schedule = replace(schedule, last_job_id=last.job.id)
        logger.info(
            "schedule %s caught up: %d fires (%s)",
            schedule.id,
            len(slots),
            schedule.catch_up.value,
            extra={"event": "schedule.caught_up", "schedule_id": schedule.id},
        )
        key = (schedule.namespace, schedule.id)
        saved = await save_progress(self.queue.store, *key, last, now_ms)
        return saved if saved is not None else schedule

    def _readable(self, key: Key, record: ScheduleRecord | None) -> Schedule | None:
        """The active schedule in `record`; None (and untracked) if gone, paused or unreadable.

        An unreadable spec is reported once per version of it, not at every resync.
        """
        schedule = None
        if record is not None and not record.paused:
            try:
                schedule = decode_schedule(record)
            except StorageError as exc:
                if self._unreadable.get(key) != record.spec:
                    self._unreadable[key] = record.spec
                    logger.error(
                        "schedule %s/%s is not readable: %s",
                        *key,
                        exc,
                        extra={"event": "schedule.unreadable", "schedule_id": key[1]},
                    )
        if schedule is None:
            self._untrack(key)
        return schedule

    def _push_next(self, key: Key, schedule: Schedule) -> None:
        # Paused: possibly just now, by a pause that came in while this runner fired.
        slot = None if schedule.paused else schedule.next_slot(schedule.resume_point())
        if slot is None:
            self._untrack(key)
            return
        self._tracked.add(key)
        self._seq += 1
        self._entries[key] = self._seq
        heapq.heappush(self._heap, (self._fire_ms(schedule, slot), self._seq, key, slot))
        if len(self._heap) > 2 * len(self._entries) + 64:
            # Many edits of far-off schedules leave stale entries behind: drop them.
            self._heap = [item for item in self._heap if self._entries.get(item[2]) == item[1]]
            heapq.heapify(self._heap)

    def _fire_ms(self, schedule: Schedule, slot: int) -> float:
        """When to fire `slot`: ahead of it when the overlap policy allows (see the module)."""
        due = schedule.due_ms(slot)
        if schedule.overlap is Overlap.ALLOW:
            return due - self.queue.settings.lookahead * 1000
        return due

    def _untrack(self, key: Key) -> None:
        self._tracked.discard(key)
        self._entries.pop(key, None)  # its heap entry is now stale and will be dropped

    # --- firing -----------------------------------------------------------------------------

    async def _fire_due(self, renew_at: float) -> None:
        clock = self.queue.clock
        while self._heap and not self._stopping.is_set():
            fire_ms, seq, key, slot = self._heap[0]
            now = clock.now()
            if not _reached(fire_ms, now) or now >= renew_at:
                return
            heapq.heappop(self._heap)
            if self._entries.get(key) != seq:
                continue
            del self._entries[key]
            if fire_ms < (now - self.settings.misfire_grace) * 1000:
                # Far behind (a stalled loop, the wall clock stepped forward): the catch-up
                # policy decides, as after downtime, instead of a burst of every slot.
                self._tracked.discard(key)
                await self._guard(self._reload(key))
            else:
                await self._guard(self._fire_slot(key, slot))

    async def _fire_slot(self, key: Key, slot: int) -> None:
        schedule = self._readable(key, await self.queue.store.get_schedule(*key))
        if schedule is None:
            return
        if slot <= schedule.resume_point() or schedule.next_slot(slot - 1) != slot:
            # Another runner handled it, or the definition changed: recompute instead.
            self._push_next(key, schedule)
            return
        fired = await self._fire(schedule, slot)
        await asyncio.sleep(0)  # let a waiting worker claim the job before the bookkeeping
        saved = await save_progress(self.queue.store, *key, fired, slot)
        if saved is None:
            self._untrack(key)
        else:
            self._push_next(key, saved)

    async def _fire(self, schedule: Schedule, slot: int) -> Fired:
        due = schedule.due_ms(slot) / 1000
        # Fired ahead, the job waits for its slot; fired at or after it (catch-up), it runs at
        # once, as `fire_many`'s jobs do.
        run_at = due if due > self.queue.clock.now() else None
        fired = await fire(self.queue, schedule, slot, run_at=run_at)
        self.created += fired.created
        return fired

    # --- waiting ----------------------------------------------------------------------------

    async def _wait_until(self, wake_ms: float) -> None:
        """Sleep until `wake_ms` on the service's clock, or until a change or `stop()`."""
        clock, early = self.queue.clock, self.settings.early_wake
        loop = asyncio.get_running_loop()
        spin_until: float | None = None
        await asyncio.sleep(0)  # always yield once: the loop above must never starve others
        while not self._wake.is_set():
            now = clock.now()
            if _reached(wake_ms, now):
                return
            remaining = (wake_ms - now * 1000) / 1000
            if remaining > early:
                await self._wait(remaining - early)
            elif spin_until is None or loop.time() < spin_until:
                # The last stretch: yield to the loop until the slot (timers are ~1 ms coarse).
                spin_until = spin_until or loop.time() + 2 * early + 0.001
                await asyncio.sleep(0)
            else:
                await self._wait(remaining)  # a clock that does not move by itself (tests)
        self._wake.clear()

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds` on the clock unless woken (a change, `stop()`) first."""
        if self._wake.is_set():
            return
        sleeper = asyncio.ensure_future(self.queue.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
