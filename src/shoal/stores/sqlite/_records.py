"""The SQLite store's worker records, schedules and leader leases (its jobs and queues are in
`_store`).

Each operation is one function of `_admin_ops`, run by the writer thread, or of `_queries`, run
by the reader thread, as the store's other operations are.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, TypeVar

from shoal.core.model import WorkerInfo
from shoal.core.ports import ScheduleRecord
from shoal.stores.sqlite import _admin_ops as admin
from shoal.stores.sqlite import _queries as queries
from shoal.stores.sqlite._threads import Op

T = TypeVar("T")


class RecordsMixin:
    """Mixed into `SqliteStore`, which provides `_write` and `_read`."""

    if TYPE_CHECKING:  # provided by SqliteStore; declared here for the type checker only

        async def _write(
            self, op: Op[T], *, atomic: bool = False, rows: int | None = None
        ) -> T: ...

        async def _read(self, query: Op[T]) -> T: ...

    # --- workers ----------------------------------------------------------------------------

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        await self._write(partial(admin.upsert_worker, worker=worker), atomic=True, rows=1)

    async def touch_worker(self, worker_id: str, now: float, namespace: str | None = None) -> bool:
        op = partial(admin.touch_worker, worker_id=worker_id, now=now, namespace=namespace)
        return await self._write(op, atomic=True, rows=1)

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        return await self._read(partial(queries.get_worker, worker_id=worker_id))

    async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
        return await self._read(partial(queries.list_workers, namespace=namespace))

    async def delete_worker(self, worker_id: str, namespace: str | None = None) -> None:
        op = partial(admin.delete_worker, worker_id=worker_id, namespace=namespace)
        await self._write(op, atomic=True)

    async def forget_workers(self, silent_before: float, limit: int = 1000) -> list[WorkerInfo]:
        op = partial(admin.forget_workers, silent_before=silent_before, limit=limit)
        return await self._write(op, atomic=True)

    # --- schedules --------------------------------------------------------------------------

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        await self._write(partial(admin.save_schedule, schedule=schedule), atomic=True, rows=1)

    async def create_schedule(self, schedule: ScheduleRecord) -> None:
        await self._write(partial(admin.create_schedule, schedule=schedule), atomic=True, rows=1)

    async def replace_schedule(self, schedule: ScheduleRecord, expected: ScheduleRecord) -> bool:
        op = partial(admin.replace_schedule, schedule=schedule, expected=expected)
        return await self._write(op, atomic=True, rows=1)

    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRecord | None:
        query = partial(queries.get_schedule, namespace=namespace, schedule_id=schedule_id)
        return await self._read(query)

    async def list_schedules(self, namespace: str | None = None) -> list[ScheduleRecord]:
        return await self._read(partial(queries.list_schedules, namespace=namespace))

    async def delete_schedule(self, namespace: str, schedule_id: str) -> None:
        op = partial(admin.delete_schedule, namespace=namespace, schedule_id=schedule_id)
        await self._write(op, atomic=True)

    # --- leadership -------------------------------------------------------------------------

    async def try_acquire_leader(self, name: str, holder: str, ttl: float, now: float) -> bool:
        op = partial(admin.try_acquire_leader, name=name, holder=holder, ttl=ttl, now=now)
        return await self._write(op, atomic=True, rows=1)

    async def release_leader(self, name: str, holder: str) -> None:
        await self._write(partial(admin.release_leader, name=name, holder=holder), atomic=True)
