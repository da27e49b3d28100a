"""The memory store's worker records, schedules and leader leases (its jobs and queues are in
`_store`).

Each kind is kept in a dict of its own. A worker's `running` is not kept: it is counted from
the jobs' leases when the record is read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

from shoal.core.errors import Conflict, NotFound
from shoal.core.model import Job, JobState, WorkerInfo
from shoal.core.ports import ScheduleRecord


class MemoryRecords:
    """The workers, schedules and leader leases of a `MemoryStore`, which builds on it."""

    if TYPE_CHECKING:  # provided by JobHeaps and MemoryStore; declared for the type checker only
        _jobs: dict[str, Job]

        def _check_open(self) -> None: ...

    def __init__(self) -> None:
        super().__init__()
        self._workers: dict[str, WorkerInfo] = {}
        self._schedules: dict[tuple[str, str], ScheduleRecord] = {}
        self._leaders: dict[str, tuple[str, float]] = {}

    # --- workers ----------------------------------------------------------------------------

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        self._check_open()
        self._workers[worker.id] = replace(worker, running=0)

    async def touch_worker(self, worker_id: str, now: float, namespace: str | None = None) -> bool:
        self._check_open()
        worker = self._workers.get(worker_id)
        if worker is None or namespace not in (None, worker.namespace):
            return False
        self._workers[worker_id] = replace(worker, last_heartbeat=now)
        return True

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        self._check_open()
        worker = self._workers.get(worker_id)
        if worker is None:
            return None
        running = sum(
            1
            for job in self._jobs.values()
            if job.state is JobState.RUNNING and job.worker_id == worker_id
        )
        return replace(worker, running=running)

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        self._check_open()
        running: dict[str, int] = defaultdict(int)
        for job in self._jobs.values():
            if job.state is JobState.RUNNING and job.worker_id is not None:
                running[job.worker_id] += 1
        return [
            replace(worker, running=running[worker.id])
            for worker in sorted(self._workers.values(), key=lambda w: w.id)
            if namespace is None or worker.namespace == namespace
        ]

    async def delete_worker(self, worker_id: str, namespace: str | None = None) -> None:
        self._check_open()
        worker = self._workers.get(worker_id)
        if worker is not None and namespace in (None, worker.namespace):
            del self._workers[worker_id]

    async def forget_workers(self, silent_before: float, limit: int = 1000) -> list[WorkerInfo]:
        self._check_open()
        leased = {job.worker_id for job in self._jobs.values() if job.state is JobState.RUNNING}
        silent = [
            worker
            for worker in self._workers.values()
            if worker.last_heartbeat < silent_before and worker.id not in leased
        ][:limit]
        for worker in silent:
            del self._workers[worker.id]
        return silent

    # --- schedules --------------------------------------------------------------------------

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        self._check_open()
        self._schedules[(schedule.namespace, schedule.id)] = schedule

    async def create_schedule(self, schedule: ScheduleRecord) -> None:
        self._check_open()
        key = (schedule.namespace, schedule.id)
        if key in self._schedules:
            raise Conflict(f"schedule {schedule.id} exists in namespace {schedule.namespace!r}")
        self._schedules[key] = schedule

    async def replace_schedule(self, schedule: ScheduleRecord, expected: ScheduleRecord) -> bool:
        self._check_open()
        key = (schedule.namespace, schedule.id)
        current = self._schedules.get(key)
        if current is None or (current.spec, current.paused) != (expected.spec, expected.paused):
            return False
        self._schedules[key] = replace(schedule, created_at=current.created_at)
        return True

    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRecord | None:
        self._check_open()
        return self._schedules.get((namespace, schedule_id))

    async def list_schedules(self, namespace: str | None = None) -> list[ScheduleRecord]:
        self._check_open()
        return sorted(
            (s for s in self._schedules.values() if namespace is None or s.namespace == namespace),
            key=lambda s: (s.namespace, s.id),
        )

    async def delete_schedule(self, namespace: str, schedule_id: str) -> None:
        self._check_open()
        if self._schedules.pop((namespace, schedule_id), None) is None:
            raise NotFound(f"schedule {schedule_id} not found in namespace {namespace!r}")

    # --- leadership -------------------------------------------------------------------------

    async def try_acquire_leader(self, name: str, holder: str, ttl: float, now: float) -> bool:
        self._check_open()
        current = self._leaders.get(name)
        if current is None or current[0] == holder or current[1] <= now:
            self._leaders[name] = (holder, now + ttl)
            return True
        return False

    async def release_leader(self, name: str, holder: str) -> None:
        self._check_open()
        current = self._leaders.get(name)
        if current is not None and current[0] == holder:
            del self._leaders[name]
