from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from shoal.core.clock import ManualClock
from shoal.core.model import Job, JobQuery
from shoal.core.service import QueueService
from shoal.scheduler import RunnerSettings, SchedulerRunner, ScheduleService
from shoal.stores.memory import MemoryStore

#: A whole second, so slots are easy to read: T + 1000 * k.
T0 = 1_700_000_000.0
T0_MS = 1_700_000_000_000
FAST = RunnerSettings(lease_ttl=2.0, renew_interval=0.5, resync_interval=30.0)


async def settle(rounds: int = 100) -> None:
    """Let every task run until it waits again (nothing here does real I/O)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@dataclass
class Rig:
    clock: ManualClock
    store: MemoryStore
    queue: QueueService
    schedules: ScheduleService
    runners: list[tuple[SchedulerRunner, asyncio.Task[None]]] = field(default_factory=list)

    async def start_runner(self, holder: str, settings: RunnerSettings = FAST) -> SchedulerRunner:
        runner = SchedulerRunner(self.queue, holder, settings)
        self.runners.append((runner, asyncio.create_task(runner.run())))
        await settle()
        return runner

    async def stop_runner(self, runner: SchedulerRunner) -> None:
        for item in self.runners:
            if item[0] is runner:
                runner.stop()
                await asyncio.wait_for(item[1], 5)
                self.runners.remove(item)
                return

    async def stop_all(self) -> None:
        for runner, _ in list(self.runners):
            await self.stop_runner(runner)

    async def advance(self, seconds: float, step: float = 0.25) -> None:
        """Move the clock in small steps, letting the runners act at each."""
        steps = round(seconds / step)
        for _ in range(steps):
            self.clock.advance(step)
            await settle()

    async def jobs(self) -> list[Job]:
        page = await self.store.list_jobs(JobQuery(limit=1000))
        return sorted(page.jobs, key=lambda job: job.id)

    async def slots(self, schedule_id: str) -> list[int]:
        """The slot of every job of the schedule (duplicates kept), sorted."""
        prefix = f"schedule:{schedule_id}:"
        out = []
        for job in await self.jobs():
            key = job.idempotency_key or ""
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                out.append(int(key[len(prefix) :]))
        return sorted(out)


def seconds(*offsets: int) -> list[int]:
    """Slots T0 + k seconds, in ms."""
    return [T0_MS + 1000 * k for k in offsets]


def assert_once(slots: list[int]) -> None:
    duplicates = [slot for slot, count in Counter(slots).items() if count > 1]
    assert not duplicates, f"slots fired more than once: {duplicates}"


def make_rig(start: float = T0) -> Rig:
    clock = ManualClock(start)
    store = MemoryStore()
    queue = QueueService(store, clock=clock)
    return Rig(clock, store, queue, ScheduleService(queue))
