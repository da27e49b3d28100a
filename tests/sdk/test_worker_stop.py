"""Stopping a worker takes nothing more, even when two claims are in flight: the claim loop's,
and run_until_idle's beside it on a worker started before (both ask the same session).
"""

from __future__ import annotations

import asyncio

from shoal.sdk import App, JobState, Worker
from tests.sdk.conftest import eventually


async def test_stop_cancels_every_claim_in_flight_and_run_until_idle_ends() -> None:
    app = App("memory://", namespace="stop-claims", worker=None)
    release = asyncio.Event()

    @app.task(name="hold")
    async def hold() -> None:
        await release.wait()

    @app.task(name="quick")
    async def quick() -> None:
        pass

    async with app:
        worker = Worker(app, concurrency=2, pool="asyncio", shutdown_grace=5.0)
        await worker.start()
        running = await hold.aenqueue()

        async def started() -> bool:
            return (await running.arefresh()).state is JobState.RUNNING

        await eventually(started)
        await asyncio.sleep(0.05)  # the claim loop waits (30 s) for work for its free slot
        draining = asyncio.create_task(worker.run_until_idle())  # claims beside it
        await asyncio.sleep(0.05)
        stopping = asyncio.create_task(worker.stop())
        await asyncio.sleep(0.05)  # stop() waits for the running job (its grace)
        late = await quick.aenqueue()
        await asyncio.sleep(0.3)  # time for a claim left in flight to take it
        release.set()
        async with asyncio.timeout(5):  # not the claims' 30 s, nor run_until_idle's for ever
            await stopping
            await draining
        assert (await late.arefresh()).state is JobState.QUEUED  # taken by no claim
