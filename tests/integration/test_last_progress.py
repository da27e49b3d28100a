"""A job that fails keeps the last progress its worker sent, whichever transport carried it.

The server stores progress beside the stream's reader, one job at a time, keeping only each
job's latest value; an outcome dropped the value still waiting, since a completion sets 1.0.
A failure keeps the progress the job reached, so that value is now stored before the failure.
A store write that yields (SQLite, PostgreSQL; slowed down here) made the race likely.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal.config import load_config
from shoal.core.model import LeaseRef
from shoal.sdk import App, TaskFailed, Worker, current_job
from shoal.server import Server

JOBS = 40


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_failed_jobs_keep_their_last_progress(
    transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = {
        "store.url": f"sqlite:///{tmp_path / 'shoal.db'}",
        "server.grpc_listen": "127.0.0.1:0",
        "server.native_listen": "127.0.0.1:0",
    }
    server = Server(load_config(path=None, env={}, overrides=overrides).config)
    ready = await server.start()
    try:
        service = server.service
        assert service is not None
        store_progress = service.set_progress

        async def slow(lease: LeaseRef, value: float) -> None:
            await asyncio.sleep(0.005)
            await store_progress(lease, value)

        monkeypatch.setattr(service, "set_progress", slow)
        url = f"grpc://{ready.grpc}" if transport == "grpc" else f"shoal://{ready.native}"
        app = App(url)

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
    finally:
        await server.stop()
