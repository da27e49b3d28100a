"""A job due shortly is leased ahead of its run_at and started at it, on the worker's clock.

The worker asks for a lookahead and the service grants its own (`service.lookahead`, 0.1 s by
default); a job whose run_at falls within it is assigned at once and held until its run_at, so
the network hop does not make it late. The same holds in local mode and over gRPC.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.core.service import ServiceSettings
from shoal.sdk import App, JobState, Worker
from tests.sdk.conftest import eventually

#: The lookahead every server and local app of these tests grants (the default).
AHEAD = ServiceSettings().lookahead


async def clock_in() -> float:
    """The time the task body started."""
    return time.time()


async def test_a_job_due_within_the_lookahead_starts_at_its_run_at(app: App) -> None:
    task = app.task(name="clock_in")(clock_in)
    async with Worker(app, concurrency=2, pool="asyncio"):
        await (await task.aenqueue()).aresult(timeout=20)  # connected and warm
        for _ in range(3):
            handle = await task.options(delay=AHEAD / 2).aenqueue()
            began = await handle.aresult(timeout=20)
            job = handle.job
            assert job.state is JobState.SUCCEEDED
            assert job.started_at is not None and job.started_at < job.run_at  # leased early
            assert job.run_at <= began < job.run_at + 0.05  # started at its run_at


@pytest.fixture(params=["memory", "sqlite"])
async def local_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    """An app in local mode: the cancel reaches the worker in the same process, well within
    the hold (over gRPC it crosses two processes, too slow to land reliably within 0.1 s).
    """
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'shoal.db'}"
    async with App(url, worker=None) as app:
        yield app


@pytest.mark.parametrize("pool", ["asyncio", "thread"])
async def test_a_job_cancelled_while_held_never_runs(local_app: App, pool: str) -> None:
    app = local_app
    bodies: list[str] = []

    def count() -> None:
        bodies.append("ran")

    task = app.task(name="count")(count)
    async with Worker(app, concurrency=1, pool=pool):  # type: ignore[arg-type]
        await (await task.aenqueue()).aresult(timeout=20)
        assert bodies == ["ran"]
        handle = await task.options(delay=AHEAD * 0.9).aenqueue()

        async def leased() -> bool:
            return (await handle.arefresh()).state is JobState.RUNNING

        await eventually(leased, timeout=AHEAD / 2)
        await handle.acancel()
        job = await handle.await_finished(timeout=20)
        assert job.state is JobState.CANCELLED
        assert bodies == ["ran"]  # the held job's body never started
