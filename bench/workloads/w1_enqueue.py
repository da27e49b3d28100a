"""W1 enqueue: one producer enqueues N no-op jobs one call at a time, then in batches of 500.

Remote: a `shoal server` subprocess on a fresh SQLite file, the producer (this process) with
the SDK over the native framing (`shoal://`) and over gRPC (`grpc://`), each against a server
of its own (`await task.aenqueue()` in a loop: each call is acknowledged after the server's
commit; the SDK sends them on its enqueue stream). The producer runs on uvloop, as the SDK's
workers and the server do. Remote also measures 64 concurrent
`aenqueue` loops in the one process ("pipelined 64"): each call still waits for its own
commit, and the calls in flight share stream messages and group commits.
Local: `App("sqlite:///...")` in this process, no worker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import uvloop

from bench.workloads._app import make_app
from bench.workloads._harness import TRANSPORTS, Emit, Procs, workspace
from shoal.sdk import App

#: Concurrent `aenqueue` loops of the pipelined measurement.
_CALLERS = 64


async def _pipelined(app: App, n: int, callers: int) -> float:
    noop = app.find_task("noop")
    assert noop is not None

    async def caller() -> None:
        for _ in range(n // callers):
            await noop.aenqueue()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return (n // callers) * callers / (time.perf_counter() - started)


async def _enqueue(url: str, n: int, batch: int, callers: int = 0) -> tuple[float, float, float]:
    app = make_app(url)
    async with app:
        noop = app.find_task("noop")
        assert noop is not None
        for _ in range(50):  # warm up the channel and the store
            await noop.aenqueue()
        started = time.perf_counter()
        for _ in range(n):
            await noop.aenqueue()
        single = n / (time.perf_counter() - started)
        calls = [noop.call() for _ in range(batch)]
        started = time.perf_counter()
        for _ in range(n // batch):
            await app.aenqueue_many(calls)
        bulk = (n // batch) * batch / (time.perf_counter() - started)
        pipelined = await _pipelined(app, n, callers) if callers else 0.0
    return single, bulk, pipelined


def _remote(
    tmp: Path, procs: Procs, n: int, batch: int, transport: str
) -> tuple[float, float, float]:
    server = procs.server(tmp / f"w1-{transport}.db")
    url = server.native_url if transport == "native" else server.grpc_url
    try:
        return uvloop.run(_enqueue(url, n, batch, _CALLERS))
    finally:
        server.child.stop()


def run(emit: Emit, *, n: int = 10_000, batch: int = 500, bulk_n: int | None = None) -> None:
    """Measure remote (native framing and gRPC) and local enqueue rates (one run)."""
    with workspace() as (tmp, procs):
        for transport in TRANSPORTS:
            single, bulk, pipelined = _remote(tmp, procs, n, batch, transport)
            where = f"remote ({transport})"
            emit("W1", f"enqueue {where}, one call at a time", single, "jobs/s", n=n)
            emit("W1", f"enqueue {where}, bulk {batch}", bulk, "jobs/s", n=n, batch=batch)
            label = f"enqueue {where}, pipelined {_CALLERS}"
            emit("W1", label, pipelined, "jobs/s", n=n, callers=_CALLERS)
        single, bulk, _ = uvloop.run(_enqueue(f"sqlite:///{tmp / 'local.db'}", n, batch))
        emit("W1", "enqueue local, one call at a time", single, "jobs/s", n=n)
        emit("W1", f"enqueue local, bulk {batch}", bulk, "jobs/s", n=n, batch=batch)
