"""Store-level throughput on PostgreSQL (no shoal network layer): enqueue, claim and complete N
no-op jobs, next to a raw asyncpg loop measured in the same run on the same schema.

    python -m bench.pg_store_bench --url postgresql://postgres@127.0.0.1:5432/postgres \
        --jobs 100000 [--json]

Each run gets a fresh database (dropped afterwards). The store run: N jobs (built before the
clock starts) are enqueued in batches of `--batch`, then `--workers` coroutines each claim up
to `--claim` jobs and complete them all at once (`asyncio.gather`, one statement per job over
the pool), until the queue is empty. The raw reference: COPY the same rows in batches of
`--batch`, then mark them done with one UPDATE per job, `--claim` jobs per transaction, over
one connection: the least work a queue on this schema could do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import asyncpg

from shoal.core.ids import new_job_id
from shoal.core.model import Job, JobState, LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.stores.postgres import PostgresOptions, PostgresStore
from shoal.stores.postgres._rows import JOB_COLUMNS, job_values
from shoal.stores.postgres.testing import temporary_database

T0 = 1_700_000_000.0


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


async def run_store(url: str, args: argparse.Namespace) -> dict[str, float]:
    jobs = make_jobs(args.jobs)
    store = PostgresStore(url, PostgresOptions(max_connections=args.pool))
    await store.open()
    try:
        started = time.perf_counter()
        for start in range(0, len(jobs), args.batch):
            await store.enqueue(jobs[start : start + args.batch], T0)
        enqueued = time.perf_counter()
        done = 0

        async def worker(name: str) -> None:
            nonlocal done
            while True:
                request = ClaimRequest("default", ("default",), name, args.claim, 30.0, T0)
                leased = await store.claim(request)
                if not leased:
                    return
                await asyncio.gather(
                    *(store.complete(LeaseRef(j.id, j.lease_token or ""), None, T0) for j in leased)
                )
                done += len(leased)

        await asyncio.gather(*(worker(f"w{i}") for i in range(args.workers)))
        finished = time.perf_counter()
    finally:
        await store.close()
    assert done == len(jobs), (done, len(jobs))
    return {
        "total": finished - started,
        "enqueue": enqueued - started,
        "claim_complete": finished - enqueued,
    }


async def run_raw(url: str, args: argparse.Namespace) -> float:
    """COPY every row, then mark each done, on the store's own (migrated) schema."""
    rows = [job_values(job) for job in make_jobs(args.jobs)]
    conn = await asyncpg.connect(url)
    done = (
        "UPDATE shoal_jobs SET state = 'succeeded', finished_at = $1, progress = 1.0 WHERE id = $2"
    )
    try:
        started = time.perf_counter()
        for start in range(0, len(rows), args.batch):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "shoal_jobs", records=rows[start : start + args.batch], columns=JOB_COLUMNS
                )
        for start in range(0, len(rows), args.claim):
            async with conn.transaction():
                await conn.executemany(
                    done, [(T0, row[0]) for row in rows[start : start + args.claim]]
                )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def record(name: str, jobs: int, seconds: float, **extra: Any) -> None:
        line = {
            "bench": "pg_store",
            "name": name,
            "jobs": jobs,
            "seconds": round(seconds, 4),
            "jobs_per_s": round(jobs / seconds, 1),
            **extra,
        }
        results.append(line)
        print(json.dumps(line), flush=True)

    config = {"batch": args.batch, "claim": args.claim, "workers": args.workers, "pool": args.pool}
    async with temporary_database(args.url) as url:
        timings = await run_store(url, args)
    record(
        "postgres enqueue+claim+complete",
        args.jobs,
        timings["total"],
        **config,
        enqueue_s=round(timings["enqueue"], 4),
        claim_complete_s=round(timings["claim_complete"], 4),
    )
    async with temporary_database(args.url) as url:
        raw = await run_raw(url, args)
    record(
        f"raw asyncpg: COPY {args.batch}/tx, UPDATE {args.claim}/tx",
        args.jobs,
        raw,
        batch=args.batch,
        claim=args.claim,
    )
    async with temporary_database(args.url) as url:
        version = await _server_version(url)
    results[-1]["server"] = version
    return results


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_store_bench", description=__doc__)
    parser.add_argument(
        "--url",
        default=os.environ.get("SHOAL_TEST_POSTGRES_URL"),
        help="a server where databases may be created (SHOAL_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="jobs per enqueue call")
    parser.add_argument("--claim", type=int, default=100, help="jobs per claim call")
    parser.add_argument("--workers", type=int, default=4, help="concurrent claim loops")
    parser.add_argument("--pool", type=int, default=10, help="store connections")
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set SHOAL_TEST_POSTGRES_URL")

    results = asyncio.run(bench(args))
    if not args.json:
        reference = results[1]["jobs_per_s"]
        print("\n| measurement | jobs | jobs/s | vs raw |")
        print("|---|---:|---:|---:|")
        for line in results:
            ratio = line["jobs_per_s"] / reference
            print(f"| {line['name']} | {line['jobs']} | {line['jobs_per_s']:,.0f} | {ratio:.2f} |")
        print(
            f"\nPostgreSQL {results[-1]['server']}, asyncpg {asyncpg.__version__}, "
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores"
        )


if __name__ == "__main__":
    main()
