"""A server killed (SIGKILL) while a worker runs a job: once it is back, the worker gives the
job back on its new session, so the job runs again at once instead of after its lease expires.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from shoal.core.errors import ShoalError
from shoal.sdk import App, JobHandle, Worker, current_job
from tests.integration._grpc_server import start_server

#: Far longer than the test may take: only the worker's release can explain a prompt re-run.
LONG_LEASE = ("--set", "service.lease_ttl=120s")


async def _result(handle: JobHandle[int], deadline: float) -> int:
    while True:  # the channel reconnects to the new server after a backoff
        try:
            return await handle.aresult(timeout=max(deadline - time.monotonic(), 0.1))
        except ShoalError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_job_running_when_the_server_died_runs_again_soon_after_it_restarts(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, *LONG_LEASE)
    port = server.address.rsplit(":", 1)[1]
    app = App(f"grpc://{server.address}", worker=None)
    runs: list[str] = []

    @app.task(name="stuck_once")
    async def stuck_once() -> int:
        runs.append(current_job().id)
        if len(runs) == 1:
            await asyncio.sleep(3600)  # until the worker stops it
        return len(runs)

    restarted = None
    async with app:
        worker = Worker(app, pool="asyncio")
        await worker.start()
        try:
            handle = await stuck_once.aenqueue()
            deadline = time.monotonic() + 20
            while not runs:
                assert time.monotonic() < deadline, "the job did not start"
                await asyncio.sleep(0.01)
            server.stop(signal.SIGKILL)
            restarted = start_server(tmp_path, "--grpc-listen", f"127.0.0.1:{port}", *LONG_LEASE)
            back = time.monotonic()
            assert await _result(handle, back + 30) == 2
            assert time.monotonic() - back < 15, "the job waited for its lease to expire"
            assert runs == [handle.id, handle.id]
            assert handle.job.attempt == 1  # given back unfinished: the attempt does not count
        finally:
            await worker.stop()
            if restarted is not None:
                restarted.stop()


async def test_a_job_that_finished_while_the_server_was_down_is_reported_not_run_again(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, *LONG_LEASE)
    port = server.address.rsplit(":", 1)[1]
    app = App(f"grpc://{server.address}", worker=None)
    runs: list[str] = []
    release = asyncio.Event()

    @app.task(name="finish_when_told")
    async def finish_when_told() -> int:
        runs.append(current_job().id)
        await release.wait()
        return len(runs)

    restarted = None
    async with app:
        worker = Worker(app, pool="asyncio")
        await worker.start()
        try:
            handle = await finish_when_told.aenqueue()
            deadline = time.monotonic() + 20
            while not runs:
                assert time.monotonic() < deadline, "the job did not start"
                await asyncio.sleep(0.01)
            server.stop(signal.SIGKILL)
            release.set()
            await asyncio.sleep(0.5)  # the job ends; its outcome finds no server
            restarted = start_server(tmp_path, "--grpc-listen", f"127.0.0.1:{port}", *LONG_LEASE)
            back = time.monotonic()
            assert await _result(handle, back + 30) == 1
            assert time.monotonic() - back < 15, "the job waited for its lease to expire"
            assert runs == [handle.id]  # reported on the new session, not run again
        finally:
            await worker.stop()
            if restarted is not None:
                restarted.stop()
