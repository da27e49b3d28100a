"""Leases lost mid-run, and a worker that outlives its server: at-least-once, never stuck."""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc.aio
import pytest

from shoal.core.errors import ShoalError, Unavailable
from shoal.core.model import LeaseRef, WorkerInfo
from shoal.core.service import ServiceSettings
from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2_grpc
from shoal.sdk import App, JobHandle, JobState, LocalTransport, Worker, _grpc_session, current_job
from shoal.sdk._grpc import GrpcTransport
from shoal.sdk._transport import LostSession
from tests.sdk import tasks
from tests.sdk.conftest import server_process, started


def spin_on_first_attempt() -> int:
    job = current_job()
    if job.attempt == 1:
        job.progress(0.1)
        while not job.cancelled:
            time.sleep(0.01)
        job.raise_if_cancelled()
    return job.attempt


async def test_a_lost_lease_stops_the_attempt_and_the_job_runs_again() -> None:
    transport = LocalTransport("memory://", ServiceSettings(heartbeat_interval=0.05))
    app = App(transport=transport, worker=None)
    spin = app.task(name="spin")(spin_on_first_attempt)
    async with app:
        handle = await spin.aenqueue()
        async with Worker(app, pool="thread") as worker:
            await started(handle)
            # the service takes the lease away (as when a worker is kicked or its lease expires)
            await transport.service.kick_worker(app.namespace, worker.id)
            assert await handle.aresult(timeout=20) == 2
    assert handle.state is JobState.SUCCEEDED and handle.job.attempt == 2


def server(port: int = 0) -> AbstractAsyncContextManager[str]:
    """A server process (see `server_process`)."""
    return server_process(port=port)


async def enqueue_until_served(app: App, deadline: float) -> JobHandle[int]:
    while True:  # the channel reconnects to the new server after a backoff
        try:
            return await tasks.add.aenqueue(2, 2)
        except ShoalError:
            if time.monotonic() > deadline:
                raise


async def test_a_worker_reconnects_when_its_server_comes_back() -> None:
    async with server() as url:
        app = App(url, worker=None)
        app.include(tasks.registry)
        await app.start()
        worker = Worker(app, pool="asyncio")
        await worker.start()
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=20) == 2
    port = int(url.rsplit(":", 1)[1])
    try:
        async with server(port):
            handle = await enqueue_until_served(app, time.monotonic() + 30)
            assert await handle.aresult(timeout=30) == 4
            await worker.stop()
    finally:
        await app.close()


async def test_a_cancelled_thread_task_leaves_no_unretrieved_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("memory://", worker=None)
    spin = app.task(name="spin_until_cancelled")(tasks.wait_until_cancelled)
    async with app:
        handle = await spin.aenqueue(30.0)
        async with Worker(app, pool="thread"):
            await started(handle)
            await handle.acancel()
            await eventually_cancelled(handle)
        gc.collect()  # an unretrieved future exception is reported when the future is freed
    assert "never retrieved" not in caplog.text


async def eventually_cancelled(handle: JobHandle[str]) -> None:
    for _ in range(200):
        await handle.arefresh()
        if handle.state is JobState.CANCELLED:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job is {handle.state}, not cancelled")


def _holding_app(namespace: str) -> tuple[App, asyncio.Event, Any]:
    """A local app whose task `hold` runs until the event is set."""
    app = App("memory://", namespace=namespace, worker=None)
    gate = asyncio.Event()

    @app.task(name="hold")
    async def hold() -> None:
        await gate.wait()

    return app, gate, hold


class _Breaks:
    """A worker session with a secret, that breaks after its first claim."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.session_secret = "lost-secret"
        self.claims = 0
        self.claimed: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def claim(self, queues: Any, limit: int, wait: float) -> Any:
        self.claims += 1
        if self.claims > 1:
            raise Unavailable("the stream broke")
        self.claimed = await self._session.claim(queues, limit, wait)
        return self.claimed


async def test_a_lost_session_is_named_on_every_attempt_until_a_new_one_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, gate, hold = _holding_app("resume")
    named: list[LostSession | None] = []
    sessions: list[_Breaks] = []
    async with app:
        connect = app.transport.connect_worker

        async def flaky_connect(*args: Any, lost: LostSession | None = None, **kw: Any) -> Any:
            named.append(lost)
            if len(named) == 2:  # the first attempt after the break: the server is not back
                raise Unavailable("connection refused")
            session = await connect(*args, **kw)
            if len(named) == 1:
                sessions.append(_Breaks(session))
                return sessions[0]
            return session

        monkeypatch.setattr(app.transport, "connect_worker", flaky_connect)
        handle = await hold.aenqueue()
        worker = Worker(app, concurrency=2)
        await worker.start()
        try:
            async with asyncio.timeout(20):
                while len(named) < 3:
                    await asyncio.sleep(0.01)
        finally:
            gate.set()
            await worker.stop()
    [job] = sessions[0].claimed
    assert job.id == handle.id
    held = (LeaseRef(job.id, job.lease_token),)
    assert named == [None, LostSession("lost-secret", held), LostSession("lost-secret", held)]


async def test_a_worker_stops_while_its_service_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, gate, hold = _holding_app("unreachable")
    attempts = 0
    async with app:
        connect = app.transport.connect_worker

        async def gone_after_first(*args: Any, lost: LostSession | None = None, **kw: Any) -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                raise Unavailable("connection refused")
            return _Breaks(await connect(*args, **kw))

        monkeypatch.setattr(app.transport, "connect_worker", gone_after_first)
        await hold.aenqueue()
        worker = Worker(app, concurrency=2, shutdown_grace=0.1)
        running = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(20):
                while attempts < 2:  # the session broke and the service cannot be reached
                    await asyncio.sleep(0.01)
            async with asyncio.timeout(10):
                await worker.stop()
                await running  # run() returns: the worker stopped without a session
        finally:
            gate.set()
    assert worker.running == 0


class _NeverWelcomes(workers_pb2_grpc.WorkerServiceServicer):
    """A server that takes the hello and never answers (one still starting, or wedged)."""

    async def Connect(self, request_iterator: Any, context: Any) -> Any:
        async for _ in request_iterator:
            pass
        await asyncio.Event().wait()
        yield  # pragma: no cover - an async generator, as the servicer's stream


async def test_a_server_that_never_welcomes_fails_the_connect_so_the_worker_tries_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_grpc_session, "CONNECT_TIMEOUT", 0.3)
    server = grpc.aio.server()
    workers_pb2_grpc.add_WorkerServiceServicer_to_server(_NeverWelcomes(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    transport = GrpcTransport(f"127.0.0.1:{port}")
    await transport.open()
    worker = WorkerInfo(id="", namespace="default", queues=("q",), connected_at=0, last_heartbeat=0)
    try:
        with pytest.raises(Unavailable):
            async with asyncio.timeout(5):
                await transport.connect_worker(worker, lambda _: None)
    finally:
        await transport.close()
        await server.stop(0)
