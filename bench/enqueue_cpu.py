"""Where an enqueue's time goes: CPU microseconds per job on each side, and per server thread.

    .venv/bin/python -m bench.enqueue_cpu [--jobs 100000] [--batch 500] [--single 10000]

A `shoal server` on a fresh SQLite file and this process as the producer (the SDK over the
native framing, on uvloop), as W1 runs them. For bulk batches and for one call at a time it
prints the rate, the producer's user and system CPU per job, and the server's per thread (from
/proc, those above 0.5 us a job): "event loop" for its main thread, "thread <id>" for the others
(CPython does not name them at the OS level; in a bulk run the busiest is the SQLite writer,
then the checkpointer). The wall time of a producer that
waits for each answer is about the sum of the two sides' CPU, so these say which side, and which
thread, a change must make cheaper. CPU per job is steadier than a rate on a shared machine:
compare a change with its parent by running both, interleaved (`git worktree`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import uvloop

from bench.workloads._app import make_app
from bench.workloads._harness import workspace

_TICK = os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of `pid`: "event loop" for its main thread
    (CPython does not give the others their names at the OS level; the busiest of them in a
    bulk run is the SQLite writer).
    """
    found: dict[str, float] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        fields = stat.read_text().rsplit(")", 1)[1].split()
        name = "event loop" if stat.parent.name == str(pid) else f"thread {stat.parent.name}"
        found[name] = (int(fields[11]) + int(fields[12])) / _TICK
    return found


async def _measure(url: str, server_pid: int, jobs: int, batch: int) -> dict[str, float]:
    app = make_app(url)
    async with app:
        noop = app.find_task("noop")
        assert noop is not None
        calls = [noop.call() for _ in range(batch)]
        for _ in range(min(20, jobs // batch)):  # warm up the stream and the store
            await app.aenqueue_many(calls)
        mine, theirs = os.times(), _threads(server_pid)
        started = time.perf_counter()
        for _ in range(jobs // batch):
            await app.aenqueue_many(calls)
        elapsed = time.perf_counter() - started
        mine_after, theirs_after = os.times(), _threads(server_pid)
    done = jobs // batch * batch
    per_job = 1e6 / done
    row = {
        "jobs/s": done / elapsed,
        "wall us": elapsed * per_job,
        "producer user": (mine_after.user - mine.user) * per_job,
        "producer sys": (mine_after.system - mine.system) * per_job,
    }
    for thread, spent in theirs_after.items():
        per = (spent - theirs.get(thread, 0.0)) * per_job
        if per >= 0.5:
            row[f"server {thread}"] = per
    return row


def run(jobs: int, batch: int, single: int) -> dict[str, dict[str, float]]:
    """The bulk and the one-at-a-time rows, each against a server of its own."""
    rows = {}
    with workspace() as (tmp, procs):
        for label, count, size in (
            (f"bulk {batch}", jobs, batch),
            ("one call at a time", single, 1),
        ):
            server = procs.server(tmp / f"cpu-{size}.db")
            try:
                rows[label] = uvloop.run(
                    _measure(server.native_url, server.child.proc.pid, count, size)
                )
            finally:
                server.child.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs of the bulk run")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single", type=int, default=10_000, help="calls of the one-at-a-time run")
    args = parser.parse_args()
    if args.batch < 1 or args.jobs < args.batch or args.single < 1:
        parser.error("--batch and --single must be >= 1, and --jobs at least one batch")
    for label, row in run(args.jobs, args.batch, args.single).items():
        print(f"{label}: " + ", ".join(f"{key} {value:,.1f}" for key, value in row.items()))


if __name__ == "__main__":
    main()
