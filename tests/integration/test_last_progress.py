"""A job that fails, or that its worker gives back as it stops, keeps the last progress the
worker sent, whichever transport carried it.

The server stores progress beside the stream's reader, one job at a time, keeping only each
job's latest value; an outcome dropped the value still waiting, since a completion sets 1.0.
A failure keeps the progress the job reached, so that value is now stored before the failure.
A store write that yields (SQLite, PostgreSQL; slowed down here) made the race likely.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.config import load_config
from shoal.core.model import LeaseRef
from shoal.core.service import QueueService
from shoal.sdk import App, TaskFailed, Worker, current_job
from shoal.server import Ready, Server

JOBS = 40


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[QueueService, Ready]]:
    """A server on a SQLite file, listening for gRPC and the native framing; its service."""
    overrides = {
        "store.url": f"sqlite:///{tmp_path / 'shoal.db'}",
        "server.grpc_listen": "127.0.0.1:0",
        "server.native_listen": "127.0.0.1:0",
    }
    server = Server(load_config(path=None, env={}, overrides=overrides).config)
    ready = await server.start()
    try:
        assert server.service is not None
        yield server.service, ready
    finally:
        await server.stop()


def _url(transport: str, ready: Ready) -> str:
    return f"grpc://{ready.grpc}" if transport == "grpc" else f"shoal://{ready.native}"


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_failed_jobs_keep_their_last_progress(
    transport: str, server: tuple[QueueService, Ready], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, ready = server
    store_progress = service.set_progress

    async def slow(lease: LeaseRef, value: float) -> None:
        await asyncio.sleep(0.005)
        await store_progress(lease, value)

    monkeypatch.setattr(service, "set_progress", slow)
    app = App(_url(transport, ready))

    @app.task(name="fail_at_60", retries=0)
    async def fail_at_60() -> None:
        job = current_job()
        job.progress(0.1)
        await asyncio.sleep(0.01)
        job.progress(0.6)
        raise ValueError("failed at 60%")

    async with app:
        handles = [await fail_at_60.aenqueue() for _ in range(JOBS)]
        async with Worker(app, concurrency=16, pool="asyncio", shutdown_grace=2.0):
            for handle in handles:
                with pytest.raises(TaskFailed):
                    await handle.aresult(timeout=30)
        kept = [(await service.get("default", h.id)).progress for h in handles]
    assert kept == [0.6] * JOBS


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_jobs_given_back_at_shutdown_keep_their_last_progress(
    transport: str, server: tuple[QueueService, Ready]
) -> None:
    # A worker that stops gives its running jobs back (a release) after their last progress:
    # the release committed before the progress waiting for the stream's writer.
    service, ready = server
    app = App(_url(transport, ready))
    started = asyncio.Event()
    running = 0

    @app.task(name="hang_at_60")
    async def hang_at_60() -> None:
        nonlocal running
        job = current_job()
        job.progress(0.1)
        await asyncio.sleep(0.01)
        job.progress(0.6)
        running += 1
        if running == JOBS:
            started.set()
        await asyncio.sleep(60)

    async with app:
        handles = [await hang_at_60.aenqueue() for _ in range(JOBS)]
        async with Worker(app, concurrency=JOBS, pool="asyncio", shutdown_grace=0.0):
            await asyncio.wait_for(started.wait(), 30)
        jobs = [await service.get("default", h.id) for h in handles]
    assert [job.state.value for job in jobs] == ["queued"] * JOBS
    assert [job.progress for job in jobs] == [0.6] * JOBS
