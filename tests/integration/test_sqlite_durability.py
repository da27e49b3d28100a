"""kill -9 a process that uses a SQLite store at a random moment; every acknowledged operation
must be in the file when it is opened again, and nothing else may have changed.

The child enqueues 10,000 jobs (four producers, random batch sizes, so the writer commits in
groups) while three workers claim and complete some of them and abandon others, and reports
each acknowledged operation on stdout as it returns: `E <id>` (enqueued), `L <id> <token>`
(leased), `C <id>` (completed). The parent SIGKILLs it after a random number of those lines.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.core.model import JobQuery, JobState
from shoal.core.ports import ClaimRequest
from shoal.stores.sqlite import SqliteStore

pytestmark = pytest.mark.crash

TOTAL = 10_000
T0 = 1_700_000_000.0
LEASE_TTL = 30.0

CHILD = r"""
import asyncio, random, sys
from shoal.core.ids import new_job_id
from shoal.core.model import Job, JobState, LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.stores.sqlite import SqliteStore

path, seed, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0, ttl = float(sys.argv[4]), float(sys.argv[5])
rng = random.Random(seed)
out = sys.stdout

def job():
    return Job(id=new_job_id(), namespace="default", queue="default", task="t", payload=b"{}",
               state=JobState.QUEUED, created_at=t0, run_at=t0, max_attempts=3)

async def producer(store, count):
    while count > 0:
        batch = [job() for _ in range(min(count, rng.randint(1, 120)))]
        count -= len(batch)
        for result in await store.enqueue(batch, t0):
            assert result.created
        out.write("".join(f"E {j.id}\n" for j in batch))
        out.flush()

async def worker(store, name, producing):
    while True:
        request = ClaimRequest("default", ("default",), name, rng.randint(1, 40), ttl, t0 + 1)
        leased = await store.claim(request)
        if not leased:
            if all(p.done() for p in producing):
                return
            await asyncio.sleep(0.001)
            continue
        out.write("".join(f"L {j.id} {j.lease_token}\n" for j in leased))
        out.flush()
        keep = [j for j in leased if rng.random() < 0.7]  # the others are abandoned, running
        leases = [LeaseRef(j.id, j.lease_token) for j in keep]
        done = await asyncio.gather(*(store.complete(lease, b"ok", t0 + 2) for lease in leases))
        out.write("".join(f"C {j.id}\n" for j in done))
        out.flush()

async def main():
    store = SqliteStore(path)
    await store.open()
    producing = [asyncio.create_task(producer(store, total // 4)) for _ in range(4)]
    await asyncio.gather(*producing, *(worker(store, f"w{i}", producing) for i in range(3)))
    out.write("DONE\n")
    out.flush()
    await asyncio.sleep(60)  # wait to be killed; the parent's kill point is before the end

asyncio.run(main())
"""


def _run_and_kill(path: Path, seed: int, kill_after: int) -> list[str]:
    """Run the child, SIGKILL it after `kill_after` acknowledgement lines; every line it wrote."""
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}
    args = [sys.executable, "-c", CHILD, str(path), str(seed), str(TOTAL), str(T0), str(LEASE_TTL)]
    lines: list[str] = []
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            for raw in child.stdout:
                lines.append(raw.decode())
                if len(lines) >= kill_after or raw == b"DONE\n":
                    break
            child.send_signal(signal.SIGKILL)
            # Read through the same buffered file: communicate() would skip what it read ahead.
            rest = child.stdout.read()
            errors = child.stderr.read()
            child.wait(timeout=20)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == -signal.SIGKILL, errors.decode()[-2000:]
    # What the child wrote before it died is in the pipe; a torn last line was never acked.
    lines += rest.decode().splitlines(keepends=True)
    return [line.rstrip("\n") for line in lines if line.endswith("\n") and line != "DONE\n"]


async def _check(path: Path, acks: list[str]) -> dict[str, int]:
    enqueued: set[str] = set()
    leased: dict[str, str] = {}
    completed: set[str] = set()
    for line in acks:
        kind, job_id, *rest = line.split(" ")
        if kind == "E":
            enqueued.add(job_id)
        elif kind == "L":
            assert job_id not in leased, f"job {job_id} was leased twice"
            leased[job_id] = rest[0]
        else:
            assert kind == "C", line
            completed.add(job_id)
    assert completed <= set(leased) <= enqueued | set(leased)

    store = SqliteStore(path)
    await store.open()  # the dead child's lock is gone with it
    try:
        jobs = {}
        cursor = None
        while True:
            page = await store.list_jobs(JobQuery(limit=1000, cursor=cursor))
            jobs.update((job.id, job) for job in page.jobs)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert enqueued <= set(jobs), f"{len(enqueued - set(jobs))} acknowledged enqueues lost"
        # Enqueues in flight at the kill may have committed unacknowledged: at most the four
        # producers' last batches.
        assert len(set(jobs) - enqueued - set(leased)) <= 4 * 120
        running = set()
        for job in jobs.values():
            assert job.state in (JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED), job
            if job.id in completed:
                assert job.state is JobState.SUCCEEDED and job.result == b"ok", job
            if job.state is JobState.QUEUED:
                assert job.attempt == 0 and job.lease_token is None and job.id not in leased, job
            elif job.state is JobState.RUNNING:
                # A claim in flight may have committed unacknowledged; an acked one must match.
                assert job.id not in leased or job.lease_token == leased[job.id], job
                assert job.attempt == 1 and job.lease_expires_at == T0 + 1 + LEASE_TTL
                running.add(job.id)
            else:
                assert job.attempt == 1 and job.result == b"ok" and job.lease_token is None, job
        stats = await store.stats("default")
        assert stats.total == len(jobs)
        # Running jobs come back once their lease expired, and only they.
        later = T0 + 1 + LEASE_TTL + 1
        reaped = await store.reap_expired(later, limit=TOTAL)
        assert {job.id for job in reaped} == running
        assert all(job.state is JobState.QUEUED and job.attempt == 1 for job in reaped)
        waiting = sum(1 for job in jobs.values() if job.state is JobState.QUEUED)
        again = await store.claim(ClaimRequest("default", ("default",), "w", TOTAL, 30.0, later))
        assert len(again) == waiting + len(running)
        assert len({job.id for job in again}) == len(again)
        return {"jobs": len(jobs), "running": len(running), "completed": len(completed)}
    finally:
        await store.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("round_", [1, 2, 3])
def test_acknowledged_operations_survive_kill_9(tmp_path: Path, round_: int) -> None:
    # A new kill point every run (most while producing, some while only draining: the run
    # writes about 27,000 lines); SHOAL_CRASH_SEED=<seed> replays a failure.
    seed = int(os.environ.get("SHOAL_CRASH_SEED") or random.randrange(2**32)) + round_
    kill_after = random.Random(seed).randint(200, 24_000)
    path = tmp_path / "crash.db"
    acks = _run_and_kill(path, seed=seed, kill_after=kill_after)
    try:
        counts = asyncio.run(_check(path, acks))
    except AssertionError as exc:
        raise AssertionError(
            f"seed {seed - round_}, killed after {len(acks)} lines: {exc}"
        ) from exc
    assert counts["jobs"] > 0
