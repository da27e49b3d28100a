"""The dashboard at scale: a SQLite store holding N finished jobs, and the time each dashboard
page takes to answer (the HTML shell plus the API calls the page's script makes), in process.

    python -m bench.dashboard_bench --jobs 1000000 [--runs 20] [--db /tmp/shoal-bench.db]

The store is filled through `SqliteStore.enqueue` with jobs already finished (90 % succeeded,
8 % failed, 2 % cancelled, over 6 queues and 12 tasks), plus 1,000 waiting jobs. A page's time
is the sum of its requests, measured with httpx over ASGI (no sockets), so it is the server's
own cost. The target is under 300 ms for the jobs page and the overview.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from shoal.core.ids import new_job_id
from shoal.core.model import Job, JobError, JobState
from shoal.core.service import QueueService
from shoal.protocols.http import HttpSettings, create_app
from shoal.stores.sqlite import SqliteStore

QUEUES = ["default", "mail", "reports", "thumbnails", "billing", "search"]
TASKS = [f"task.{name}" for name in "abcdefghijkl"]
TARGET_MS = 300.0


def finished_job(i: int, now: float) -> Job:
    created = now - 86_400 + i * 0.05
    roll = i % 50
    state = JobState.SUCCEEDED
    if roll < 4:
        state = JobState.FAILED
    elif roll == 4:
        state = JobState.CANCELLED
    error = JobError("ValueError", f"bad row {i}", "Traceback ...") if roll < 4 else None
    return Job(
        id=new_job_id(),  # type: ignore[arg-type]
        namespace="default",
        queue=QUEUES[i % len(QUEUES)],
        task=TASKS[i % len(TASKS)],
        payload=b'{"n":%d}' % i,
        state=state,
        created_at=created,
        run_at=created,
        attempt=1,
        max_attempts=1,
        result=b'{"ok":true}' if state is JobState.SUCCEEDED else None,
        error=error,
        started_at=created + 0.01,
        finished_at=created + 0.02,
    )


async def fill(store: SqliteStore, count: int, batch: int = 10_000) -> list[str]:
    """Store `count` finished jobs and 1,000 waiting ones; a few ids for deep pages."""
    now = time.time()
    marks: list[str] = []
    for start in range(0, count, batch):
        jobs = [finished_job(i, now) for i in range(start, min(start + batch, count))]
        await store.enqueue(jobs, now)
        marks.append(jobs[0].id)
    waiting = [
        Job(id=new_job_id(), namespace="default", queue=QUEUES[i % 6], task=TASKS[i % 12],  # type: ignore[arg-type]
            payload=b"{}", state=JobState.QUEUED, created_at=now, run_at=now)
        for i in range(1000)
    ]  # fmt: skip
    await store.enqueue(waiting, now)
    return marks


@asynccontextmanager
async def client_for(service: QueueService, ttl: float) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service, settings=HttpSettings(counts_ttl=ttl))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client


async def middle_id(client: httpx.AsyncClient) -> str:
    """An id half-way down the listing of a reused file (a cursor for a deep page)."""
    now = time.time()
    answer = await client.get("/api/v1/jobs", params={"limit": 1, "created_before": now - 43_200})
    return str(answer.json()["jobs"][0]["id"])


async def page_time(client: httpx.AsyncClient, urls: list[str]) -> float:
    """Milliseconds to fetch every URL of a page, one after the other (as its script does)."""
    start = time.perf_counter()
    for url in urls:
        response = await client.get(url)
        response.raise_for_status()
    return (time.perf_counter() - start) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this file")
    parser.add_argument(
        "--counts-ttl", type=float, default=0.0,
        help="HttpSettings.counts_ttl (0, the default here: every page counts afresh)",
    )  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "dashboard.db"
        reuse = path.exists()
        store = SqliteStore(path)
        await store.open()
        try:
            started = time.perf_counter()
            marks = [] if reuse else await fill(store, args.jobs)
            if not reuse:
                print(
                    f"filled {args.jobs:,} finished jobs in {time.perf_counter() - started:.1f} s"
                )
            service = QueueService(store)
            async with client_for(service, args.counts_ttl) as client:
                first = (await client.get("/api/v1/jobs?limit=1")).json()["jobs"][0]["id"]
                deep = marks[len(marks) // 2] if marks else await middle_id(client)
                api = "/api/v1"
                pages = {
                    "overview": ["/", f"{api}/overview?window=900"],
                    "jobs (newest page)": ["/jobs", f"{api}/jobs?limit=50"],
                    "jobs (page at 50 %)": ["/jobs", f"{api}/jobs?limit=50&cursor={deep}"],
                    "jobs (state=failed)": ["/jobs", f"{api}/jobs?limit=50&state=failed"],
                    "jobs (queue=mail)": ["/jobs", f"{api}/jobs?limit=50&queue=mail"],
                    "job detail": [f"/jobs/{first}", f"{api}/jobs/{first}",
                                   f"{api}/jobs/{first}/events"],
                    "queues": ["/queues", f"{api}/queues"],
                    "metrics": ["/metrics"],
                }  # fmt: skip
                print(f"counts_ttl={args.counts_ttl:g} s, {args.runs} runs per page")
                print(f"{'page':<22} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  target")
                for name, urls in pages.items():
                    await page_time(client, urls)  # warm up
                    times = sorted([await page_time(client, urls) for _ in range(args.runs)])
                    median = statistics.median(times)
                    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                    verdict = "ok" if median < TARGET_MS else "SLOW"
                    if name == "metrics":
                        verdict = "-"
                    print(f"{name:<22} {median:>10.1f} {p95:>8.1f} {times[-1]:>8.1f}  {verdict}")
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
