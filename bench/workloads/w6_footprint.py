"""W6 footprint: server start-up time and RSS (idle, and with a large backlog), worker RSS.

Start-up is the time from spawning `shoal server` to reading its ready line (Python start and
imports included). RSS is read from /proc/PID/status (VmRSS) 1 s after the server is idle.
"""

from __future__ import annotations

import asyncio
import time

from bench.workloads._harness import Emit, rss_mb, workspace
from bench.workloads.w2_drain import fill


def run(emit: Emit, *, backlog: int = 100_000) -> None:
    """One run of every footprint measurement."""
    with workspace() as (tmp, procs):
        server = procs.server(tmp / "w6.db")
        emit("W6", "server start to ready line", server.ready_seconds, "s")
        time.sleep(1.0)
        emit("W6", "server RSS idle", rss_mb(server.child.proc.pid), "MiB")
        worker = procs.worker(server.url, concurrency=32, queues="other")
        time.sleep(1.0)
        emit("W6", "worker RSS idle", rss_mb(worker.proc.pid), "MiB", concurrency=32)
        asyncio.run(fill(server.url, backlog))
        time.sleep(1.0)
        emit(
            "W6",
            f"server RSS after {backlog:,} enqueued",
            rss_mb(server.child.proc.pid),
            "MiB",
            backlog=backlog,
        )
