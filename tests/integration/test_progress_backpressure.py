"""A slow progress write on the server must not hold up the worker's stream.

Tasks that report progress all the time (each throttled by the SDK to one message per 100 ms,
so ten per second per running job) and a store whose progress write stalls once: the stream's
reader waited for each write, its messages piled up, and the native framing ended the stream
after `STALLED_AFTER` (every running job lost its lease and ran again). The server now keeps
each job's latest progress and stores it beside the reader.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from shoal.config import load_config
from shoal.core.model import LeaseRef
from shoal.protocols.grpc.native import _connection
from shoal.sdk import App, Worker, current_job
from shoal.server import Server

JOBS = 150
STALL = 2.0


async def test_a_stalled_progress_write_does_not_end_the_worker_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_connection, "STALLED_AFTER", 1.0)  # 5 s in production
    overrides = {
        "store.url": "memory://",
        "server.grpc_listen": "",
        "server.native_listen": "127.0.0.1:0",
    }
    server = Server(load_config(path=None, env={}, overrides=overrides).config)
    ready = await server.start()
    try:
        service = server.service
        assert service is not None
        store_progress = service.set_progress
        writes = 0

        async def slow_once(lease: LeaseRef, value: float) -> None:
            nonlocal writes
            writes += 1
            if writes == 100:
                await asyncio.sleep(STALL)  # a lock wait, a failover, a checkpoint
            await store_progress(lease, value)

        monkeypatch.setattr(service, "set_progress", slow_once)
        app = App(f"shoal://{ready.native}")

        @app.task(name="spin")
        async def spin() -> str:
            job, until = current_job(), time.monotonic() + 3.5
            while time.monotonic() < until:
                job.progress(time.monotonic() % 1)
                await asyncio.sleep(0.002)
            return "ok"

        async with app:
            handles = [await spin.aenqueue() for _ in range(JOBS)]
            async with Worker(app, concurrency=JOBS, pool="asyncio", shutdown_grace=2.0):
                results = [await handle.aresult(timeout=30) for handle in handles]
            attempts = [(await service.get("default", h.id)).attempt for h in handles]
        assert results == ["ok"] * JOBS
        assert attempts == [1] * JOBS  # no lease was lost: nothing ran twice
        assert writes > 100  # the stall happened
    finally:
        await server.stop()
