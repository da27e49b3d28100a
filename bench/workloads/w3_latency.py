"""W3 latency: idle workers; a producer enqueues at a steady rate; start minus enqueue time.

Each job carries `time.time()` taken just before its enqueue call; the worker's task appends
that and its own `time.time()` at start to a file (one line per job). The producer paces on
an absolute timetable (job i at t0 + i/rate) and does not wait for a call to return before
the next one starts (see `produce`), so a slow call does not lower the rate. The producer runs
on uvloop, as W1's does and as the SDK's workers and the server do.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import uvloop

from bench.workloads._app import make_app
from bench.workloads._harness import Admin, Emit, percentiles, workspace


async def produce(url: str, rate: float, seconds: float) -> tuple[int, float]:
    """Enqueue `stamp` jobs at `rate` per second for `seconds`: how many were enqueued, and
    the rate reached (lower than `rate` only when the producer's own loop falls behind).

    Open loop: each call starts at its time on the timetable whether or not the earlier ones
    have returned (the SDK pipelines them on one stream). A producer that waited for each call
    would slow down exactly when the server does, and hide the latency of the jobs it did not
    send meanwhile (coordinated omission).
    """
    app = make_app(url)
    async with app:
        stamp = app.find_task("stamp")
        assert stamp is not None
        await stamp.aenqueue(time.time())  # warm up (counted: the worker runs it too)
        await asyncio.sleep(0.5)
        total = int(rate * seconds)
        calls: list[asyncio.Future[object]] = []
        t0 = time.perf_counter()
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            calls.append(asyncio.ensure_future(stamp.aenqueue(time.time())))
        reached = total / (time.perf_counter() - t0) if total > 1 else rate
        await asyncio.gather(*calls)
        return total + 1, min(reached, rate)


def latencies(log: Path) -> list[float]:
    """Start minus enqueue of every recorded job, in ms (the warm-up job left out)."""
    values = []
    for line in log.read_text().splitlines()[1:]:
        enqueued, started = line.split()
        values.append((float(started) - float(enqueued)) * 1000)
    return values


def measure(rate: float, seconds: float, concurrency: int = 64) -> dict[str, float]:
    """One run at `rate`: p50/p95/p99/max in ms, and the rate reached."""
    with workspace() as (tmp, procs):
        server = procs.server(tmp / "w3.db")
        log = tmp / "starts.log"
        procs.worker(server.url, concurrency=concurrency, log=log)
        admin = Admin(server.address)
        try:
            total, reached = uvloop.run(produce(server.url, rate, seconds))
            admin.wait_done(total, timeout=60)
        finally:
            admin.close()
        values = latencies(log)
        assert len(values) == total - 1, (len(values), total)
        return {**percentiles(values), "reached": reached}


def run(emit: Emit, *, rates: tuple[int, ...] = (100, 1000), seconds: float = 15.0) -> None:
    """Measure the latency percentiles at each rate (one run)."""
    for rate in rates:
        result = measure(rate, seconds)
        reached = result.pop("reached")
        emit("W3", f"latency {rate}/s: rate reached", reached, "jobs/s", rate=rate)
        for key, value in result.items():
            emit("W3", f"latency {rate}/s {key}", value, "ms", rate=rate, seconds=seconds)
