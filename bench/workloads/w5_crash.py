"""W5 crash: `kill -9` a worker in the middle of a job, and `kill -9` the server mid-drain.

Worker: two idle workers are connected; a job that sleeps 5 s starts on one of them (its start
line names the pid); 1 s later that worker's process group gets SIGKILL; the bench times how
long after the kill the job starts again on the other worker, and checks it finishes once.

Server: 10,000 jobs drain through two workers; at 30% done the server gets SIGKILL, and is
started again on the same port and SQLite file. Every job must end succeeded exactly once in
the store; runs are counted per job id from the jobs' own log (a job that was running at the
crash may run again: at-least-once), and none may be missing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

from bench.workloads._app import make_app
from bench.workloads._harness import Admin, Emit, free_port, workspace


async def _enqueue(url: str, task: str, n: int, *args: object) -> None:
    app = make_app(url)
    async with app:
        found = app.find_task(task)
        assert found is not None
        calls = [found.call(*args) for _ in range(500)]
        for start in range(0, n, 500):
            await app.aenqueue_many(calls[: min(500, n - start)])


def _lines(log: Path, kind: str) -> list[list[str]]:
    if not log.exists():
        return []
    return [line.split() for line in log.read_text().splitlines() if line.startswith(kind)]


def _wait_for(predicate: object, timeout: float, every: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(every)


def worker_kill(seconds: float = 5.0, kill_after: float = 1.0) -> dict[str, float]:
    """Kill the worker running a `seconds` job `kill_after` seconds after it started; how
    long until the job starts again on the other worker.
    """
    with workspace() as (tmp, procs):
        server = procs.server(tmp / "w5.db")
        log = tmp / "sleepy.log"
        workers = [procs.worker(server.url, concurrency=4, log=log, name=f"w{i}") for i in (0, 1)]
        asyncio.run(_enqueue(server.url, "sleepy", 1, seconds))
        _wait_for(lambda: _lines(log, "start"), 30)
        (_, _, pid, started) = _lines(log, "start")[0]
        victim = next(w for w in workers if w.proc.pid == int(pid))
        time.sleep(max(0.0, float(started) + kill_after - time.time()))
        killed = time.time()
        victim.kill(signal.SIGKILL)
        _wait_for(lambda: len(_lines(log, "start")) >= 2, 120, every=0.001)
        restarted = float(_lines(log, "start")[1][3])
        _wait_for(lambda: _lines(log, "done"), 30)
        admin = Admin(server.address)
        try:
            admin.wait_done(1, 30)
            succeeded = admin.counts().get("succeeded", 0)
        finally:
            admin.close()
        return {
            "re-run after kill": (restarted - killed) * 1000,
            "completions": len(_lines(log, "done")),
            "succeeded": succeeded,
        }


def server_kill(n: int = 10_000) -> dict[str, float]:
    """Kill the server at 30% of a drain and restart it; counts of lost and doubled jobs."""
    with workspace() as (tmp, procs):
        port, native_port = free_port(), free_port()
        db = tmp / "w5s.db"
        server = procs.server(db, port, native_port)
        log = tmp / "counted.log"
        admin = Admin(server.address)
        admin.pause()
        asyncio.run(_enqueue(server.url, "counted", n))
        for i in (0, 1):
            procs.worker(server.url, concurrency=32, log=log, name=f"w{i}")
        admin.resume()
        _wait_for(lambda: admin.counts().get("succeeded", 0) >= n * 0.3, 120, every=0.01)
        server.child.kill(signal.SIGKILL)
        server.child.proc.wait(10)
        admin.close()
        killed = time.perf_counter()
        server = procs.server(db, port, native_port)
        admin = Admin(server.address)
        try:
            finished = admin.wait_done(n, 300, every=0.1)
            counts = admin.counts()
        finally:
            admin.close()
        runs = Counter(line[0] for line in _lines(log, ""))
    return {
        "server restart to all done s": finished - killed,
        "jobs succeeded": counts.get("succeeded", 0),
        "jobs failed": counts.get("failed", 0),
        "jobs lost (never ran)": n - len(runs),
        "jobs run twice": sum(1 for count in runs.values() if count > 1),
    }


def run(emit: Emit, *, n: int = 10_000, seconds: float = 5.0, kill_after: float = 1.0) -> None:
    """Both crash measurements (one run)."""
    for key, value in worker_kill(seconds, kill_after).items():
        emit("W5", f"worker kill -9: {key}", value, "ms" if "after" in key else "count")
    for key, value in server_kill(n).items():
        emit("W5", f"server kill -9: {key}", value, "s" if key.endswith(" s") else "count", n=n)
