"""How much of the SQLite writer's bulk INSERT needs the GIL: the bound on overlapping it with
the event loop's Python.

    .venv/bin/python -m bench.gil_share [--batches 40] [--batch 500] [--rounds 3]

A writer inserts `--batches` batches (one transaction each, the store's own multi-row INSERT
of new jobs, on a connection made and migrated as the store makes it): first alone, then while
another thread spins a Python loop, the stand-in for an event loop busy with the next batch,
at the interpreter's default switch interval (5 ms) and at 0.5 ms. Per job it prints the
writer's time alone and beside the spinner, and how long the spinner waited: an upper bound on
the writer's time holding the GIL (binding the parameters, the statement's Python call, the
hand-overs). What is left of the writer's time alone is the lower bound on what could run
beside the loop (SQLite's own work, done with the GIL released). The last column is the
spinner's wait beside a thread that only sleeps, the machine's noise. Each column's best of
`--rounds`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.core.ids import new_job_ids
from shoal.core.model import Job, JobState
from shoal.stores.sqlite._connection import connect, migrate
from shoal.stores.sqlite._rows import insert_jobs_sql, new_job_params

#: A pause of the spinner longer than this is time it waited for the GIL (or for a core): a
#: turn of its loop takes well under a microsecond.
_GAP = 5e-6


def _batches(count: int, size: int) -> list[list[Any]]:
    now = time.time()
    batches = []
    for _ in range(count):
        params: list[Any] = []
        for job_id in new_job_ids(size):
            job = Job(id=job_id, namespace="default", queue="q", task="noop", payload=b"[]",
                      state=JobState.QUEUED, created_at=now, run_at=now)  # fmt: skip
            params += new_job_params(job)
        batches.append(params)
    return batches


def _fresh(path: Path) -> Path:
    conn = connect(path, "NORMAL")
    migrate(conn)
    conn.close()
    return path


def _write(path: Path, batches: list[list[Any]], size: int, spent: list[float]) -> None:
    conn = connect(path, "NORMAL")
    sql = insert_jobs_sql(size)
    started = time.perf_counter()
    for params in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql, params)
        conn.execute("COMMIT")
    spent.append(time.perf_counter() - started)
    conn.close()


def _spin(stop: threading.Event, lost: list[float]) -> None:
    waited, last = 0.0, time.perf_counter()
    while not stop.is_set():
        now = time.perf_counter()
        if now - last > _GAP:
            waited += now - last
        last = now
    lost.append(waited)


def _beside_spinner(run: Callable[[], object]) -> float:
    """Seconds the spinner spent waiting while `run()` ran on this thread."""
    stop, lost = threading.Event(), list[float]()
    spinner = threading.Thread(target=_spin, args=(stop, lost))
    spinner.start()
    run()
    stop.set()
    spinner.join()
    return lost[0]


def measure(batches: int, size: int, switch: float) -> dict[str, float]:
    """Microseconds per job: the writer alone, beside the spinner, the spinner's wait, and its
    wait beside a thread that only sleeps as long (the machine's own noise)."""
    jobs, default = batches * size, sys.getswitchinterval()
    sys.setswitchinterval(switch)
    try:
        with tempfile.TemporaryDirectory(prefix="shoal-gil-") as tmp:
            alone: list[float] = []
            _write(_fresh(Path(tmp) / "alone.db"), _batches(batches, size), size, alone)
            beside: list[float] = []
            path, params = _fresh(Path(tmp) / "beside.db"), _batches(batches, size)
            held = _beside_spinner(lambda: _write(path, params, size, beside))
            noise = _beside_spinner(lambda: time.sleep(beside[0]))
    finally:
        sys.setswitchinterval(default)
    return {
        "alone": alone[0] / jobs * 1e6,
        "beside": beside[0] / jobs * 1e6,
        "held": held / jobs * 1e6,
        "noise": noise / jobs * 1e6,
    }


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        "| switch interval | writer alone (us/job) | beside the spinner | spinner waited | noise |"
    )
    print("|---|---:|---:|---:|---:|")
    for switch in (sys.getswitchinterval(), 0.0005):
        runs = [measure(args.batches, args.batch, switch) for _ in range(args.rounds)]
        best = {key: min(run[key] for run in runs) for key in runs[0]}
        print(
            f"| {switch * 1e3:g} ms | {best['alone']:.1f} | {best['beside']:.1f}"
            f" | {best['held']:.1f} | {best['noise']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
