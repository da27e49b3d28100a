"""Store-level throughput (no network): enqueue, claim and complete N no-op jobs, next to a raw
sqlite3 loop measured in the same run.

    python -m bench.store_bench --jobs 100000 [--store sqlite|memory] [--json]

The store run: N jobs (built before the clock starts) are enqueued in batches of `--batch`,
then `--workers` coroutines each claim up to `--claim` jobs and complete them all at once
(`asyncio.gather`, so the writer's group commit carries them), until the queue is empty.
Completion is counted by the loops themselves. The raw reference: a pure-Python sqlite3 loop
(WAL, synchronous=NORMAL) on the same schema that inserts each job row and later updates it to
done, with one transaction per job and with 100 jobs per transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from shoal.core.ids import new_job_id
from shoal.core.model import Job, JobState, LeaseRef
from shoal.core.ports import ClaimRequest, Store
from shoal.stores.memory import MemoryStore
from shoal.stores.sqlite import SqliteStore
from shoal.stores.sqlite._connection import connect, migrate
from shoal.stores.sqlite._rows import insert_jobs_sql, new_job_params

T0 = 1_700_000_000.0
T = TypeVar("T")


def make_jobs(count: int) -> list[Job]:
    return [
        Job(
            id=new_job_id(),  # type: ignore[arg-type]
            namespace="default",
            queue="default",
            task="noop",
            payload=b"{}",
            state=JobState.QUEUED,
            created_at=T0,
            run_at=T0,
            max_attempts=3,
            backoff="exponential",
        )
        for _ in range(count)
    ]


async def run_store(
    store: Store, jobs: list[Job], batch: int, claim: int, workers: int
) -> dict[str, float]:
    started = time.perf_counter()
    for start in range(0, len(jobs), batch):
        await store.enqueue(jobs[start : start + batch], T0)
    enqueued = time.perf_counter()
    done = 0

    async def worker(name: str) -> None:
        nonlocal done
        while True:
            request = ClaimRequest("default", ("default",), name, claim, 30.0, T0)
            leased = await store.claim(request)
            if not leased:
                return
            await asyncio.gather(
                *(store.complete(LeaseRef(j.id, j.lease_token or ""), None, T0) for j in leased)
            )
            done += len(leased)

    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    finished = time.perf_counter()
    assert done == len(jobs), (done, len(jobs))
    return {
        "total": finished - started,
        "enqueue": enqueued - started,
        "claim_complete": finished - enqueued,
    }


async def bench_store(kind: str, path: Path, args: argparse.Namespace) -> dict[str, float]:
    jobs = make_jobs(args.jobs)
    store: Store = (
        SqliteStore(path, synchronous=args.synchronous) if kind == "sqlite" else MemoryStore()
    )
    await store.open()
    try:
        with profiled(args.profile):
            timings = await run_store(store, jobs, args.batch, args.claim, args.workers)
        if isinstance(store, SqliteStore):
            commits, operations = store.group_stats
            timings["mean_group"] = operations / max(commits, 1)
    finally:
        await store.close()
    return timings


@contextmanager
def profiled(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="enabled")
    with profiler:
        yield
    sys.stderr.write(profiler.output_text(unicode=True, color=False, show_all=False))


def run_loop(kind: str, main: Coroutine[Any, Any, T]) -> T:
    if kind == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def bench_raw(path: Path, count: int, per_transaction: int, synchronous: str) -> float:
    """The raw reference loop on the store's own schema: insert every row, then mark it done."""
    conn = connect(path, synchronous)
    migrate(conn)
    rows = [new_job_params(job) for job in make_jobs(count)]
    insert = insert_jobs_sql(1)  # the statement the store runs for one new job
    done = "UPDATE jobs SET state = 'succeeded', finished_at = ?, progress = 1.0 WHERE id = ?"

    def in_transactions(each: Callable[[Any], None], items: list[Any]) -> None:
        for start in range(0, len(items), per_transaction):
            conn.execute("BEGIN")
            for item in items[start : start + per_transaction]:
                each(item)
            conn.execute("COMMIT")

    started = time.perf_counter()
    in_transactions(lambda row: conn.execute(insert, row), rows)
    in_transactions(lambda row: conn.execute(done, (T0, row[0])), rows)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.store_bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--batch", type=int, default=500, help="jobs per enqueue call")
    parser.add_argument("--claim", type=int, default=100, help="jobs per claim call")
    parser.add_argument("--workers", type=int, default=4, help="concurrent claim loops")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="NORMAL")
    parser.add_argument(
        "--raw-single-jobs",
        type=int,
        default=20_000,
        help="jobs for the slow one-transaction-per-job raw loop",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of the store run (the server runs on uvloop)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the store run")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, directory: Path, round_: int) -> list[dict[str, Any]]:
    """One round: the store, then both raw loops; one JSON-ready dict per measurement."""
    lines: list[dict[str, Any]] = []

    def record(name: str, jobs: int, seconds: float, cpu: float, **extra: Any) -> None:
        line = {
            "bench": "store",
            "name": name,
            "round": round_,
            "jobs": jobs,
            "seconds": round(seconds, 4),
            "cpu_seconds": round(cpu, 4),
            "jobs_per_s": round(jobs / seconds, 1),
            "synchronous": args.synchronous,
            **extra,
        }
        lines.append(line)
        print(json.dumps(line), flush=True)

    cpu = time.process_time()
    timings = run_loop(args.loop, bench_store(args.store, directory / f"store{round_}.db", args))
    record(
        f"{args.store} store: enqueue+claim+complete",
        args.jobs,
        timings["total"],
        time.process_time() - cpu,
        batch=args.batch,
        claim=args.claim,
        workers=args.workers,
        loop=args.loop,
        enqueue_s=round(timings["enqueue"], 4),
        claim_complete_s=round(timings["claim_complete"], 4),
        mean_group=round(timings.get("mean_group", 0.0), 1),
    )
    for per_transaction, count in ((100, args.jobs), (1, min(args.jobs, args.raw_single_jobs))):
        cpu = time.process_time()
        path = directory / f"raw{per_transaction}-{round_}.db"
        seconds = bench_raw(path, count, per_transaction, args.synchronous)
        name = f"raw sqlite3, {per_transaction} job(s)/transaction"
        record(name, count, seconds, time.process_time() - cpu)
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        for round_ in range(1, args.rounds + 1):
            rounds.append(measure(args, Path(tmp), round_))
    if args.json:
        return
    ratios = [lines[0]["jobs_per_s"] / lines[1]["jobs_per_s"] for lines in rounds]
    print(f"\n{args.rounds} rounds; median (min-max) jobs/s\n")
    print("| measurement | jobs | jobs/s | vs raw batched (median of rounds) |")
    print("|---|---:|---:|---:|")
    for index, first in enumerate(rounds[0]):
        rates = sorted(lines[index]["jobs_per_s"] for lines in rounds)
        ratio = statistics.median(
            lines[index]["jobs_per_s"] / lines[1]["jobs_per_s"] for lines in rounds
        )
        spread = f"{statistics.median(rates):,.0f} ({rates[0]:,.0f}-{rates[-1]:,.0f})"
        print(f"| {first['name']} | {first['jobs']} | {spread} | {ratio:.2f} |")
    print(
        f"\nstore/raw batched per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, loop {args.loop}, synchronous {args.synchronous}"
    )


if __name__ == "__main__":
    main()
