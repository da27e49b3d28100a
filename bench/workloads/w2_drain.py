"""W2 drain: N no-op jobs already queued; worker processes start; time until the last finished.

The queue is paused while the jobs are enqueued (bulk, 500 per call) and the workers connect;
the clock starts when it is resumed, and stops when a poll every 20 ms finds no job of the
queue queued, running or scheduled (`Admin.unfinished`: three one-job listings from an index),
and the queue's counts then say every job finished. So worker start-up (Python imports,
connecting) is outside the measurement, and the detection costs the server little. (It polled
the counts every 50 ms before: a count reads every job of the queue, a sixth of the server's
CPU during a 60,000-job drain.)

Worker configuration: 2 processes x 1024 (asyncio pool), `bench/run.py`'s DRAIN_*. Until
2026-12-07 a worker's slot stayed taken until the server acked the job's outcome, and 2x128 was
the best (2x256, 3x256, 4x256 within noise); a slot now frees when the call ends, and more jobs
in flight amortize each message and commit: 60,000 jobs over shoal://, 3 interleaved rounds,
medians 2x128 6,715, 2x512 8,868, 2x1024 9,357 jobs/s (2x2048: 10,713 in one round, no better).
"""

from __future__ import annotations

import asyncio
import time

from bench.workloads._app import make_app
from bench.workloads._harness import Admin, Emit, workspace


async def fill(url: str, n: int, batch: int = 500) -> None:
    """Enqueue `n` no-op jobs in batches."""
    app = make_app(url)
    async with app:
        noop = app.find_task("noop")
        assert noop is not None
        calls = [noop.call() for _ in range(batch)]
        for start in range(0, n, batch):
            await app.aenqueue_many(calls[: min(batch, n - start)])


def drain(
    n: int,
    *,
    processes: int,
    concurrency: int,
    pool: str = "asyncio",
    timeout: float = 1200,
    prefetch: int = 0,
) -> float:
    """One drain of `n` jobs; jobs/s."""
    with workspace() as (tmp, procs):
        server = procs.server(tmp / "w2.db")
        admin = Admin(server.address)
        try:
            admin.pause()
            asyncio.run(fill(server.url, n))
            for i in range(processes):
                procs.worker(
                    server.url,
                    concurrency=concurrency,
                    pool=pool,
                    name=f"worker{i}",
                    prefetch=prefetch,
                )
            started = time.perf_counter()
            admin.resume()
            finished = admin.wait_done(n, timeout)
            return n / (finished - started)
        finally:
            admin.close()


def run(
    emit: Emit, *, sizes: tuple[int, ...] = (10_000,), processes: int = 1, concurrency: int = 64
) -> None:
    """Measure drain rates for each backlog size (one run)."""
    for n in sizes:
        rate = drain(n, processes=processes, concurrency=concurrency)
        emit(
            "W2",
            f"drain {n:,} queued",
            rate,
            "jobs/s",
            n=n,
            processes=processes,
            concurrency=concurrency,
            pool="asyncio",
        )
