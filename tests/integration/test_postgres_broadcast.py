"""Replicas on one PostgreSQL database tell each other what only a process's own event bus
carried: a kick or drain of a worker connected to another replica, a schedule's change made on
a replica that does not lead the scheduler (it waited for the leader's 30 s resync).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from typer.testing import CliRunner

from shoal import cli
from shoal._security import build_access
from shoal.config import ShoalConfig
from shoal.core.auth import ANONYMOUS
from shoal.core.events import RELAYED, Event, Subscription
from shoal.core.ids import new_worker_session
from shoal.core.model import JobState, LeaseRef, WorkerInfo
from shoal.core.service import WAIT_RECHECK, ClaimInput, QueueService, ResumeInput
from shoal.core.validation import EnqueueRequest
from shoal.scheduler import ScheduleService
from shoal.scheduler.model import ScheduleInput
from shoal.stores.postgres import PostgresStore
from shoal.stores.postgres.testing import temporary_database
from tests.integration._postgres import postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[QueueService, QueueService]]:
    async with temporary_database(postgres_url()) as url:
        first, second = PostgresStore(url), PostgresStore(url)
        await first.open()
        await second.open()
        try:
            yield QueueService(first), QueueService(second)
        finally:
            await first.close()
            await second.close()


async def _next(subscription: Subscription) -> Event:
    event = await subscription.next(timeout=5)
    assert event is not None, "no event within 5 s"
    return event


async def test_a_kick_and_a_drain_reach_the_replica_the_worker_is_connected_to(
    replicas: tuple[QueueService, QueueService],
) -> None:
    here, there = replicas
    await there.register_worker(WorkerInfo("w-1", "default", ("q",), 0.0, 0.0))
    seen = there.events.subscribe(kinds=("worker.kick", "worker.drain"))
    mine = here.events.subscribe(kinds=("worker.kick", "worker.drain"))
    try:
        await here.drain_worker("default", "w-1")
        drained = await _next(seen)
        assert (drained.kind, drained.worker_id, drained.namespace) == (
            "worker.drain",
            "w-1",
            "default",
        )
        await here.kick_worker("default", "w-1")
        kicked = await _next(seen)
        assert (kicked.kind, kicked.worker_id) == ("worker.kick", "w-1")
        # marked as relayed there (metrics count an event once, where it happened)
        assert drained.data[RELAYED] == kicked.data[RELAYED] == "true"
        # the replica that published them got each once: its own broadcasts do not come back
        own = [await _next(mine) for _ in range(2)]
        assert [event.kind for event in own] == ["worker.drain", "worker.kick"]
        assert not any(RELAYED in event.data for event in own)
        assert await mine.next(timeout=0.3) is None
    finally:
        seen.close()
        mine.close()


async def test_a_schedule_changed_on_one_replica_is_announced_on_the_others(
    replicas: tuple[QueueService, QueueService],
) -> None:
    here, there = replicas
    seen = there.events.subscribe(kinds=("schedule.created", "schedule.paused"))
    try:
        schedules = ScheduleService(here)
        created = await schedules.add(ScheduleInput("tick", id="fast", every_ms=250))
        event = await _next(seen)
        assert (event.kind, event.data["schedule_id"]) == ("schedule.created", created.id)
        await schedules.pause("default", "fast")
        assert (await _next(seen)).kind == "schedule.paused"
    finally:
        seen.close()


async def test_a_resume_drains_the_lost_stream_on_whichever_replica_still_serves_it(
    replicas: tuple[QueueService, QueueService],
) -> None:
    here, there = replicas
    lost_id, secret = new_worker_session()
    new_id, _ = new_worker_session()
    await here.register_worker(WorkerInfo(lost_id, "default", ("q",), 0.0, 0.0))
    await there.register_worker(WorkerInfo(new_id, "default", ("q",), 0.0, 0.0))
    # `here` has not seen the lost stream end (a half-open connection): it went on feeding it
    seen = here.events.subscribe(kinds=("worker.drain",))
    try:
        await there.resume_worker(ResumeInput(new_id, secret, (), "default"))
        drained = await _next(seen)
        assert (drained.worker_id, drained.namespace) == (lost_id, "default")
    finally:
        seen.close()


async def test_a_drain_made_as_a_replica_stops_still_reaches_the_others(
    replicas: tuple[QueueService, QueueService],
) -> None:
    """The broadcast is sent in the background; a stopping server waits for it before it
    closes its store (`Server.stop`), or the other replica never hears of the drain.
    """
    here, there = replicas
    await there.register_worker(WorkerInfo("w-1", "default", ("q",), 0.0, 0.0))
    seen = there.events.subscribe(kinds=("worker.drain",))
    try:
        await here.drain_worker("default", "w-1")  # publishing is its last step
        await here.finish_broadcasts()
        await here.store.close()
        drained = await _next(seen)
        assert (drained.kind, drained.worker_id) == ("worker.drain", "w-1")
    finally:
        seen.close()


async def test_a_namespace_deleted_on_one_replica_is_forgotten_on_the_others(
    replicas: tuple[QueueService, QueueService],
) -> None:
    """What keeps state per namespace (HTTP's metrics and charts) forgets it on
    `namespace.deleted`; a namespace deleted through another replica stayed there for ever.
    """
    here, there = replicas
    assert isinstance(here.store, PostgresStore)
    access = await build_access(ShoalConfig(), here.store, here)
    await access.create_namespace(ANONYMOUS, "team")
    seen = there.events.subscribe(kinds=("namespace.deleted",))
    try:
        await access.delete_namespace(ANONYMOUS, "team", _no_jobs)
        await _relayed_deletion(seen, "team")
    finally:
        seen.close()


async def _no_jobs(namespace: str) -> int:
    return 0


async def _relayed_deletion(seen: Subscription, namespace: str) -> None:
    """The next event is `namespace`'s deletion, heard from another replica."""
    deleted = await _next(seen)
    assert (deleted.kind, deleted.namespace, deleted.data[RELAYED]) == (
        "namespace.deleted",
        namespace,
        "true",
    )


async def test_a_namespace_deleted_with_the_cli_is_forgotten_by_the_servers() -> None:
    # `shoal namespaces rm --store postgresql://...` opens the store itself, as a replica does
    runner = CliRunner()
    async with temporary_database(postgres_url()) as url:
        store = PostgresStore(url)
        await store.open()
        there = QueueService(store)
        seen = there.events.subscribe(kinds=("namespace.deleted",))
        try:
            for command in ("create", "rm"):
                done = await asyncio.to_thread(
                    runner.invoke, cli.app, ["namespaces", command, "team", "--store", url]
                )
                assert done.exit_code == 0, done.output
            await _relayed_deletion(seen, "team")
        finally:
            seen.close()
            await store.close()


async def test_a_wait_on_one_replica_sees_a_job_finished_on_another(
    replicas: tuple[QueueService, QueueService],
) -> None:
    # job events stay in the process they happen in: the wait slept until its timeout (and
    # the SDK's result() waits in 60 s slices)
    here, there = replicas
    enqueued = await here.enqueue(EnqueueRequest("t", queue="q"))
    waiting = asyncio.create_task(here.wait_for("default", enqueued.job.id, timeout=10))
    [job] = await there.claim(ClaimInput("w-1", ("q",)))
    assert job.lease_token is not None
    await there.complete(LeaseRef(job.id, job.lease_token), None)
    started = asyncio.get_running_loop().time()
    finished = await waiting
    assert finished.state is JobState.SUCCEEDED
    assert asyncio.get_running_loop().time() - started < 2 * WAIT_RECHECK
