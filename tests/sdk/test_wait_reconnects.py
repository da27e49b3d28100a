"""A wait for a job's result, and the `on_success`/`on_failure` callbacks that rest on it,
outlive a dropped connection: waiting is read-only, so the SDK waits again until its deadline.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shoal.core.errors import ShoalError, Unavailable
from shoal.core.model import Job
from shoal.sdk import App, LocalTransport, TaskFailed, Worker
from tests.sdk import tasks


class _Drops(LocalTransport):
    """A local transport whose first `drops` waits fail as a dropped connection does."""

    def __init__(self, drops: int, error: ShoalError | None = None) -> None:
        super().__init__("memory://")
        self.drops = drops
        self.error = error or Unavailable("the shoal server is not reachable: connection lost")
        self.waits = 0

    async def wait(self, namespace: str, job_id: str, timeout: float) -> Job:
        self.waits += 1
        if self.waits <= self.drops:
            raise self.error
        return await super().wait(namespace, job_id, timeout)


def _app(transport: LocalTransport) -> App:
    app = App(transport=transport, worker=None)
    app.include(tasks.registry)
    return app


async def test_a_wait_that_loses_its_connection_waits_again() -> None:
    transport = _Drops(drops=2)
    async with _app(transport) as app:
        handle = await tasks.add.aenqueue(2, 3)
        async with Worker(app, pool="asyncio"):
            assert await handle.aresult(timeout=20) == 5
    assert transport.waits >= 3


async def test_callbacks_fire_after_a_lost_connection(caplog: pytest.LogCaptureFixture) -> None:
    transport = _Drops(drops=2)
    got: list[object] = []
    async with _app(transport) as app:
        handle = await tasks.add.aenqueue(20, 22)
        handle.on_success(got.append)
        failing = await tasks.boom.aenqueue("no")
        failing.on_failure(lambda error: got.append(type(error)))
        async with Worker(app, pool="asyncio"):
            async with asyncio.timeout(20):
                while len(got) < 2:
                    await asyncio.sleep(0.01)
    assert sorted(got, key=repr) == sorted([42, TaskFailed], key=repr)
    assert "never retrieved" not in caplog.text


async def test_a_wait_still_unreachable_at_its_deadline_raises_unavailable() -> None:
    transport = _Drops(drops=10**6)
    async with _app(transport):
        handle = await tasks.add.aenqueue(1, 1)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await handle.aresult(timeout=0.5)
        assert time.monotonic() - started < 5
    assert transport.waits > 1


async def test_a_wait_without_deadline_ends_when_its_app_closes() -> None:
    transport = _Drops(drops=10**6)
    app = _app(transport)
    await app.start()
    handle = await tasks.add.aenqueue(1, 1)
    waiting = asyncio.ensure_future(handle.aresult())
    await asyncio.sleep(0.3)  # a few waits failed and were tried again
    await app.close()
    async with asyncio.timeout(5):
        with pytest.raises(Unavailable):
            await waiting
    assert app.home is None  # trying again did not start the app anew


async def test_a_callback_whose_wait_fails_otherwise_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _Drops(drops=1, error=ShoalError("the server broke"))
    async with _app(transport):
        handle = await tasks.add.aenqueue(1, 1)
        with caplog.at_level(logging.ERROR, logger="shoal.sdk._handle"):
            handle.on_success(lambda _: None)
            async with asyncio.timeout(10):
                while not any(r.message.startswith("job callback") for r in caplog.records):
                    await asyncio.sleep(0.01)
        gc.collect()  # an unretrieved task exception is reported when the task is freed
    assert "the server broke" in caplog.text
    assert "never retrieved" not in caplog.text


# --- against a real server, killed and restarted on the same ports ------------------------


class _Server:
    """A `shoal server` process on a SQLite file, listening on gRPC and the native framing."""

    def __init__(self, process: subprocess.Popen[str], grpc: str, native: str) -> None:
        self.process, self.grpc, self.native = process, grpc, native

    @classmethod
    async def start(
        cls, db: Path, grpc: str = "127.0.0.1:0", native: str = "127.0.0.1:0"
    ) -> _Server:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "shoal.cli", "server", "--store", f"sqlite:///{db}"),
                *("--grpc-listen", grpc, "--native-listen", native),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        ready = await asyncio.to_thread(process.stdout.readline)
        found = re.search(r"grpc=(\S+) native=(\S+)", ready)
        if found is None:
            await cls(process, "", "").kill()
            raise AssertionError(f"the server did not start: {ready!r}")
        return cls(process, found.group(1), found.group(2))

    async def kill(self) -> None:
        """SIGKILL, as in a crash: the server closes nothing."""
        self.process.kill()
        await asyncio.to_thread(self.process.wait, 30)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.mark.parametrize("scheme", ["grpc", "shoal"])
async def test_a_pending_result_and_its_callbacks_outlive_a_server_restart(
    scheme: str, tmp_path: Path
) -> None:
    db = tmp_path / "shoal.db"
    got: list[object] = []
    servers = [await _Server.start(db)]
    first = servers[0]
    app = App(f"{scheme}://{first.grpc if scheme == 'grpc' else first.native}", worker=None)
    app.include(tasks.registry)
    try:
        async with app:
            handle = await tasks.add.aenqueue(40, 2)
            handle.on_success(got.append)
            waiting = asyncio.ensure_future(handle.aresult(timeout=60))
            await asyncio.sleep(0.3)  # the long polls are on the wire
            await first.kill()
            await asyncio.sleep(0.3)
            back = await _Server.start(db, first.grpc, first.native)
            servers.append(back)
            # the job runs on a worker of the waiting app: its gRPC channel kept trying while
            # the server was down, and a worker stream opened between two reconnect attempts
            # failed at once (it now waits for the channel, and the attempts are 1 s apart)
            async with Worker(app, pool="asyncio"):
                async with asyncio.timeout(60):
                    assert await waiting == 42
                    while not got:
                        await asyncio.sleep(0.01)
    finally:
        for server in servers:
            await server.kill()
    assert got == [42]
