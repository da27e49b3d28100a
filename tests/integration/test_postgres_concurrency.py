"""Four OS processes claim and complete 20,000 jobs of one queue at once: each job succeeds
exactly once and no job is ever held by two leases.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shoal.core.model import JobState, LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.stores.postgres import PostgresOptions, PostgresStore
from shoal.stores.postgres.testing import temporary_database
from shoal.testing import T0, make_job
from tests.integration._postgres import postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

JOBS = 20_000
PROCESSES = 4


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with temporary_database(postgres_url()) as url:
        yield url


async def _claim_and_complete(url: str, worker: str, out: Path, start: Any) -> None:
    store = PostgresStore(url, PostgresOptions(max_connections=2))
    await store.open()
    leases: list[tuple[str, str]] = []
    try:
        await asyncio.to_thread(start.wait)  # every process starts claiming at once
        while True:
            request = ClaimRequest("default", ("default",), worker, 25, 600.0, T0)
            jobs = await store.claim(request)
            if not jobs:
                break
            for job in jobs:
                token = job.lease_token or ""
                leases.append((job.id, token))
                done = await store.complete(LeaseRef(job.id, token), None, T0)
                assert done.state is JobState.SUCCEEDED
    finally:
        await store.close()
        out.write_text(json.dumps(leases))


def _worker(url: str, worker: str, out: str, start: Any) -> None:
    asyncio.run(_claim_and_complete(url, worker, Path(out), start))


async def test_four_processes_share_one_queue_without_double_leases(
    database: str, tmp_path: Path
) -> None:
    store = PostgresStore(database)
    await store.open()
    try:
        for _ in range(0, JOBS, 500):
            await store.enqueue([make_job() for _ in range(500)], T0)
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(PROCESSES)
        outputs = [tmp_path / f"w{i}.json" for i in range(PROCESSES)]
        processes = [
            context.Process(target=_worker, args=(database, f"w{i}", str(path), start))
            for i, path in enumerate(outputs)
        ]
        for process in processes:
            process.start()
        for process in processes:
            await asyncio.to_thread(process.join, 240)
        assert [p.exitcode for p in processes] == [0] * PROCESSES

        per_process = [json.loads(path.read_text()) for path in outputs]
        leases = [tuple(lease) for claimed in per_process for lease in claimed]
        job_ids = [job_id for job_id, _ in leases]
        assert len(leases) == JOBS, "some job was not claimed, or claimed twice"
        assert len(set(job_ids)) == JOBS, "a job was leased twice"
        assert len({token for _, token in leases}) == JOBS, "two leases shared a token"
        assert all(len(claimed) > 0 for claimed in per_process), "a process never got a job"
        stats = await store.stats("default")
        assert stats.by_state[JobState.SUCCEEDED] == JOBS and stats.total == JOBS
    finally:
        await store.close()
