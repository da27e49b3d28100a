"""The store contract's atomic schedule writes: create, and replace over an expected version."""

from __future__ import annotations

import asyncio

import pytest

from shoal.core.errors import Conflict
from shoal.core.ports import ScheduleRecord, Store
from shoal.testing._jobs import T0


def _record(spec: str = "{}", paused: bool = False, namespace: str = "default") -> ScheduleRecord:
    return ScheduleRecord(namespace, "s1", spec, paused, T0 + 1, None, T0)


class ScheduleWritesContract:
    """`Store.create_schedule` and `Store.replace_schedule`: part of `StoreContract`."""

    async def test_create_schedule_refuses_a_taken_id(self, store: Store) -> None:
        first = _record('{"v": 1}')
        await store.create_schedule(first)
        with pytest.raises(Conflict):
            await store.create_schedule(_record('{"v": 2}'))
        assert await store.get_schedule("default", "s1") == first
        await store.create_schedule(_record(namespace="other"))  # ids are per namespace
        assert len(await store.list_schedules()) == 2

    async def test_concurrent_creations_of_one_id_one_wins(self, store: Store) -> None:
        attempts = [store.create_schedule(_record(f'{{"v": {n}}}')) for n in range(4)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert sum(result is None for result in results) == 1
        assert all(isinstance(r, Conflict) for r in results if r is not None), results

    async def test_replace_schedule_applies_over_the_expected_version_only(
        self, store: Store
    ) -> None:
        stored = _record('{"v": 1}')
        await store.create_schedule(stored)
        newer = ScheduleRecord("default", "s1", '{"v": 2}', False, T0 + 5, T0 + 4, T0 + 99)
        assert await store.replace_schedule(newer, stored)
        # `created_at` is the schedule's own: a replacement keeps it.
        assert await store.get_schedule("default", "s1") == ScheduleRecord(
            "default", "s1", '{"v": 2}', False, T0 + 5, T0 + 4, T0
        )
        # `stored` is now stale: its writer must re-read, not write over the change.
        assert not await store.replace_schedule(_record('{"v": 3}'), stored)
        current = await store.get_schedule("default", "s1")
        assert current is not None and current.spec == '{"v": 2}'

    async def test_replace_schedule_sees_a_changed_paused_flag(self, store: Store) -> None:
        await store.create_schedule(_record("{}", paused=True))
        assert not await store.replace_schedule(_record('{"v": 2}'), _record("{}", paused=False))
        assert await store.get_schedule("default", "s1") == _record("{}", paused=True)

    async def test_replace_schedule_never_creates(self, store: Store) -> None:
        await store.create_schedule(_record())
        await store.delete_schedule("default", "s1")
        assert not await store.replace_schedule(_record('{"v": 2}'), _record())
        assert await store.get_schedule("default", "s1") is None
