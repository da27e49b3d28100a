"""The tasks every benchmark workload runs (imported by the bench and by its workers).

Tasks that record something append one line per run to the file named by the
`SHOAL_BENCH_LOG` environment variable (line-buffered, so a `kill -9` loses no finished line).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import IO

from shoal.sdk import App, current_job

QUEUE = "bench"
_log: IO[str] | None = None


def _record(line: str) -> None:
    global _log
    if _log is None:
        _log = open(os.environ["SHOAL_BENCH_LOG"], "a", buffering=1)
    _log.write(line + "\n")


def make_app(url: str, worker: object = None) -> App:
    """An app with the bench tasks at `url` (no in-process worker unless `worker` is given)."""
    app = App(url, worker=worker)  # type: ignore[arg-type]

    @app.task(name="noop", queue=QUEUE)
    async def noop() -> None:
        """A no-op job: nothing but its completion."""

    @app.task(name="stamp", queue=QUEUE)
    async def stamp(enqueued: float) -> None:
        """Record the enqueue time the job carries and the time it starts."""
        _record(f"{enqueued!r} {time.time()!r}")

    @app.task(name="tick", queue=QUEUE)
    async def tick() -> None:
        """A scheduled job: record its id and its start time (the slot is read from the job)."""
        _record(f"{current_job().id} {time.time()!r}")

    @app.task(name="sleepy", queue=QUEUE)
    async def sleepy(seconds: float) -> None:
        """Record the start (with this process's pid), sleep, record the end."""
        job = current_job().id
        _record(f"start {job} {os.getpid()} {time.time()!r}")
        await asyncio.sleep(seconds)
        _record(f"done {job} {os.getpid()} {time.time()!r}")

    @app.task(name="counted", queue=QUEUE)
    async def counted() -> None:
        """Record every execution by job id (to count runs per job)."""
        _record(current_job().id)

    return app


app = make_app(os.environ.get("SHOAL_URL", "memory://"))
