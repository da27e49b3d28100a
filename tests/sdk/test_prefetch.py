"""A gRPC worker's prefetch: jobs leased beyond its free slots, waiting for one to free.

They must stay leased while they wait (heartbeats renew them), end at once when cancelled,
and go back to the queue, unstarted, when the worker stops.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from shoal.core.errors import InvalidArgument
from shoal.sdk import App, JobHandle, JobState, Worker
from shoal.sdk._transport import MAX_PREFETCH
from tests.sdk import tasks
from tests.sdk.conftest import eventually, server_process, started


def short_lease_server() -> AbstractAsyncContextManager[str]:
    """A server whose leases last 1 s unless renewed (reaped every 0.1 s)."""
    settings = (
        "service.lease_ttl=1s",
        "service.heartbeat_interval=0.2s",
        "service.reap_interval=0.1s",
    )
    return server_process(*(arg for setting in settings for arg in ("--set", setting)))


@asynccontextmanager
async def one_slot_worker() -> AsyncIterator[tuple[App, Worker]]:
    """An app on a short-lease server, and a worker of concurrency 1 that prefetches 1."""
    async with short_lease_server() as url:
        app = App(url, namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)
        app.include(tasks.registry)
        sleep = app.task(name="async_sleep")(tasks.async_sleep)
        async with app:
            await sleep.aenqueue(0.0)  # the task is registered before the worker starts
            worker = Worker(app, concurrency=1, pool="asyncio", shutdown_grace=5.0, prefetch=1)
            yield app, worker


async def prefetched(app: App, seconds: float) -> tuple[JobHandle[str], JobHandle[str]]:
    """A running job of `seconds`, and one enqueued after it (held back by the worker)."""
    sleep = app.find_task("async_sleep")
    assert sleep is not None
    first = await sleep.aenqueue(seconds)
    await started(first)
    second = await sleep.aenqueue(0.0)

    async def leased() -> bool:
        await second.arefresh()
        return second.state is JobState.RUNNING

    await eventually(leased)
    return first, second


def test_the_prefetch_is_off_by_default_and_bounded() -> None:
    app = App("memory://")
    assert Worker(app).prefetch == 0  # no job held back behind a long one unless asked
    assert Worker(app, prefetch=MAX_PREFETCH).prefetch == MAX_PREFETCH
    for bad in (-1, MAX_PREFETCH + 1):
        with pytest.raises(InvalidArgument, match="prefetch"):
            Worker(app, prefetch=bad)


async def test_a_prefetched_job_keeps_its_lease_while_it_waits() -> None:
    async with one_slot_worker() as (app, worker):
        async with worker:
            first, second = await prefetched(app, 3.0)  # three lease lengths
            assert await first.aresult(timeout=20) == "slept"
            assert await second.aresult(timeout=20) == "slept"
        assert second.job.attempt == 1  # never reaped and run again


async def test_a_cancelled_prefetched_job_ends_without_waiting_for_a_slot() -> None:
    async with one_slot_worker() as (app, worker):
        async with worker:
            first, second = await prefetched(app, 30.0)
            await second.acancel()

            async def cancelled() -> bool:
                await second.arefresh()
                return second.state is JobState.CANCELLED

            await eventually(cancelled, timeout=5)
            await first.acancel()


async def test_stopping_gives_prefetched_jobs_back_unstarted() -> None:
    async with one_slot_worker() as (app, worker):
        await worker.start()
        first, second = await prefetched(app, 0.5)
        await worker.stop()
        assert await first.aresult(timeout=20) == "slept"
        await second.arefresh()
        assert second.state is JobState.QUEUED
        assert second.job.attempt == 0
