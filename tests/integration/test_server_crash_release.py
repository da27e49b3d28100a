"""A server killed (SIGKILL) under a worker and restarted on the same file and port: on its new
session the worker keeps the leases of the jobs it still runs, reports the ones that finished
while the server was down, and has the server give back at once the jobs assigned to it that
never started, so nothing runs twice and nothing waits for its lease to expire.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shoal.core.errors import ShoalError
from shoal.core.model import JobState
from shoal.sdk import App, JobHandle, Worker, current_job
from tests.integration._grpc_server import ServerProcess, start_server

#: Far longer than the test may take: only the worker's settling can explain a prompt end.
LONG_LEASE = ("--set", "service.lease_ttl=120s")


@dataclass
class Crash:
    """A server, an app with a worker on it, and the job ids its tasks ran, in order."""

    tmp_path: Path
    server: ServerProcess
    app: App
    runs: list[str] = field(default_factory=list)
    restarted: ServerProcess | None = None

    async def started(self) -> None:
        deadline = time.monotonic() + 20
        while not self.runs:
            assert time.monotonic() < deadline, "the job did not start"
            await asyncio.sleep(0.01)

    def kill(self) -> None:
        self.server.stop(signal.SIGKILL)

    def restart(self) -> float:
        """Start the server again on its port and file; the time it was back."""
        port = self.server.address.rsplit(":", 1)[1]
        listen = ("--grpc-listen", f"127.0.0.1:{port}")
        self.restarted = start_server(self.tmp_path, *listen, *LONG_LEASE)
        return time.monotonic()


@asynccontextmanager
async def crash(tmp_path: Path, **worker_options: int) -> AsyncIterator[Crash]:
    server = start_server(tmp_path, *LONG_LEASE)
    rig = Crash(tmp_path, server, App(f"grpc://{server.address}", worker=None))
    async with rig.app:
        worker = Worker(rig.app, pool="asyncio", **worker_options)
        await worker.start()
        try:
            yield rig
        finally:
            await worker.stop()
            for process in (rig.server, rig.restarted):
                if process is not None:
                    process.stop()


async def _result(handle: JobHandle[int], deadline: float) -> int:
    while True:  # the channel reconnects to the new server after a backoff
        try:
            return await handle.aresult(timeout=max(deadline - time.monotonic(), 0.1))
        except ShoalError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_job_running_through_the_restart_keeps_its_lease_and_reports(
    tmp_path: Path,
) -> None:
    async with crash(tmp_path) as rig:
        finish = asyncio.Event()

        @rig.app.task(name="outlive_the_server")
        async def outlive_the_server() -> int:
            rig.runs.append(current_job().id)
            await finish.wait()
            return len(rig.runs)

        handle = await outlive_the_server.aenqueue()
        await rig.started()
        rig.kill()
        back = rig.restart()
        await asyncio.sleep(1.0)  # the worker reconnects and renews the lease meanwhile
        finish.set()
        assert await _result(handle, back + 30) == 1
        assert time.monotonic() - back < 15, "the job waited for its lease to expire"
        assert rig.runs == [handle.id]  # ran once, through the restart
        assert handle.job.attempt == 1


async def test_a_job_that_finished_while_the_server_was_down_is_reported_not_run_again(
    tmp_path: Path,
) -> None:
    async with crash(tmp_path) as rig:
        release = asyncio.Event()

        @rig.app.task(name="finish_when_told")
        async def finish_when_told() -> int:
            rig.runs.append(current_job().id)
            await release.wait()
            return len(rig.runs)

        handle = await finish_when_told.aenqueue()
        await rig.started()
        rig.kill()
        release.set()
        await asyncio.sleep(0.5)  # the job ends; its outcome finds no server
        back = rig.restart()
        assert await _result(handle, back + 30) == 1
        assert time.monotonic() - back < 15, "the job waited for its lease to expire"
        assert rig.runs == [handle.id]  # reported on the new session, not run again


async def test_a_job_assigned_but_not_started_goes_back_at_once_not_after_its_lease(
    tmp_path: Path,
) -> None:
    async with crash(tmp_path, concurrency=1, prefetch=1) as rig:
        finish = asyncio.Event()

        @rig.app.task(name="hold_the_slot")
        async def hold_the_slot() -> int:
            rig.runs.append(current_job().id)
            await finish.wait()
            return len(rig.runs)

        first = await hold_the_slot.aenqueue()
        await rig.started()
        prefetched = await hold_the_slot.aenqueue()
        deadline = time.monotonic() + 20
        while (await prefetched.arefresh()).state is not JobState.RUNNING:  # leased, waiting
            assert time.monotonic() < deadline, "the second job was not prefetched"
            await asyncio.sleep(0.01)
        rig.kill()  # the prefetched job goes with the worker's session
        await asyncio.sleep(1.5)  # down a while, as after a real crash
        back = rig.restart()
        await asyncio.sleep(1.0)  # the worker resumes: the first job kept, the second given back
        finish.set()
        assert await _result(first, back + 30) == 1
        assert await _result(prefetched, back + 30) == 2
        assert time.monotonic() - back < 15, "the prefetched job waited for its lease to expire"
        assert rig.runs == [first.id, prefetched.id]
        assert prefetched.job.attempt == 1  # the attempt it never started did not count
