"""Dispatch over real sockets: each job to exactly one worker, done once; a dropped worker's
job goes to another; a live worker keeps its job past the lease time (the server renews it).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from shoal.core.clock import ManualClock
from shoal.core.maintenance import Maintenance
from shoal.core.model import Job, JobState, WorkerState
from shoal.core.ports import ClaimRequest, Store
from shoal.core.service import ServiceSettings
from shoal.protocols.tcp.server import TcpSettings
from shoal.stores.memory import MemoryStore
from shoal.stores.postgres import PostgresStore
from shoal.stores.postgres.testing import temporary_database
from shoal.stores.sqlite import SqliteStore
from shoal.testing import make_job
from tests.integration._postgres import postgres_url
from tests.integration._tcp import Client, running

SETTINGS = TcpSettings(test_mode=True, delay_policy="IGNORE", job_timeout=3600)


async def _work(client: Client, seen: list[str], total: Counter[str], goal: int) -> None:
    """A Jobatator worker: take the dispatched job, mark it done, until `goal` jobs are done."""
    while sum(total.values()) < goal:
        try:
            line = await client.line(timeout=0.2)
        except TimeoutError:
            continue
        job = json.loads(line)["Job"]
        seen.append(job["ID"])
        total[job["ID"]] += 1
        assert await client.call(f"UPDATE_JOB {job['ID']} done") == "OK"


@asynccontextmanager
async def _store(kind: str, directory: Path) -> AsyncIterator[Store]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        yield SqliteStore(str(directory / "shoal.db"))
    else:
        async with temporary_database(postgres_url()) as url:
            yield PostgresStore(url)


@pytest.mark.parametrize(
    "kind", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_two_workers_each_job_to_exactly_one_worker(kind: str, tmp_path: Path) -> None:
    async with _store(kind, tmp_path) as store, running(SETTINGS, store=store) as harness:
        workers = [await harness.login(group="group1") for _ in range(2)]
        for worker in workers:
            assert await worker.call("SUBSCRIBE jobs") == "OK"
        publisher = await harness.login(group="group1")
        count = 1000
        await publisher.send("".join(f'PUBLISH jobs work {{"n":{n}}}\n' for n in range(count)))
        published = [await publisher.line() for _ in range(count)]
        assert all(reply.startswith("OK#") for reply in published)

        seen: list[list[str]] = [[], []]
        total: Counter[str] = Counter()
        await asyncio.wait_for(
            asyncio.gather(
                *(_work(w, s, total, count) for w, s in zip(workers, seen, strict=True))
            ),
            60,
        )
        assert sorted(total) == sorted(reply[3:] for reply in published)
        assert set(total.values()) == {1}  # every job dispatched exactly once, to one worker
        assert all(seen), "both workers took jobs"
        stats = await harness.service.stats("group1", "jobs")
        assert stats.by_state[JobState.SUCCEEDED] == count and stats.total == count
        jobs = [await harness.service.get("group1", job_id) for job_id in list(total)[:50]]
        assert {job.attempt for job in jobs} == {1}


async def test_a_dropped_workers_job_goes_to_another_worker() -> None:
    async with running(SETTINGS) as harness:
        first = await harness.login(group="group1")
        assert await first.call("SUBSCRIBE q") == "OK"
        publisher = await harness.login(group="group1")
        job_id = (await publisher.call("PUBLISH q task payload"))[3:]
        assert (await first.dispatched())["ID"] == job_id
        second = await harness.login(group="group1")
        assert await second.call("SUBSCRIBE q") == "OK"
        with pytest.raises(TimeoutError):  # the job is the first worker's: not sent twice
            await second.line(timeout=0.3)

        await first.close()  # the worker process dies with its job
        again = await second.dispatched()
        assert (again["ID"], again["Attempts"]) == (job_id, 1)
        assert await second.call(f"UPDATE_JOB {job_id} done") == "OK"
        job = await harness.service.get("group1", job_id)
        assert job.state is JobState.SUCCEEDED and job.attempt == 2
        assert await publisher.call(f"UPDATE_JOB {job_id} done") == "Err: lease-lost"


async def test_a_connected_worker_keeps_its_job_past_the_lease_time() -> None:
    quick = ServiceSettings(lease_ttl=0.3)
    async with running(SETTINGS, service_settings=quick) as harness:
        maintenance = Maintenance(harness.service, reap_interval=0.05)
        duty = asyncio.create_task(maintenance.run())
        try:
            holder = await harness.login(group="group1")
            assert await holder.call("SUBSCRIBE slow") == "OK"
            publisher = await harness.login(group="group1")
            job_id = (await publisher.call("PUBLISH slow task x"))[3:]
            assert (await holder.dispatched())["ID"] == job_id
            idle = await harness.login(group="group1")
            assert await idle.call("SUBSCRIBE slow") == "OK"
            await asyncio.sleep(1.0)  # over three lease times: the reaper runs meanwhile
            with pytest.raises(TimeoutError):
                await idle.line(timeout=0.1)
            assert (await harness.service.get("group1", job_id)).state is JobState.RUNNING
            assert await holder.call(f"UPDATE_JOB {job_id} done") == "OK"
        finally:
            maintenance.stop()
            await duty


async def test_an_idle_connection_keeps_its_worker_record_fresh() -> None:
    # Jobatator clients send no heartbeat: an idle one showed as lost, and the maintenance
    # duty that forgets long-silent workers would have deleted its record while it is open.
    quick = ServiceSettings(lease_ttl=0.3)
    async with running(SETTINGS, service_settings=quick) as harness:
        idle = await harness.login(group="group1")
        assert await idle.call("SUBSCRIBE slow") == "OK"
        await asyncio.sleep(1.0)  # over three lease times
        [member] = await harness.service.list_workers("group1")
        assert member.state is WorkerState.IDLE
        assert harness.service.clock.now() - member.last_heartbeat < 0.3


async def test_an_idle_client_heartbeat_keeps_its_record_without_lease_renewal() -> None:
    # With renew_leases off the client's HEARTBEAT is all that refreshes the records; it
    # covered only groups where it held a lease, and an idle connection's record was forgotten
    settings = TcpSettings(test_mode=True, renew_leases=False)
    async with running(settings, service_settings=ServiceSettings(lease_ttl=15.0)) as harness:
        clock = ManualClock()
        harness.service.clock = clock
        idle = await harness.login(group="group1")
        assert await idle.call("SUBSCRIBE q") == "OK"
        for _ in range(10):
            clock.advance(10.0)
            await idle.call("HEARTBEAT")
        [member] = await harness.service.list_workers("group1")
        assert clock.now() - member.last_heartbeat < 10.0


async def test_a_group_left_during_a_lease_renewal_does_not_come_back() -> None:
    # renew() read the groups once, then awaited each: a group left in between came back
    # with a new id and no record, and a kick from the last real group no longer hung up
    quick = ServiceSettings(lease_ttl=0.6, heartbeat_interval=0.2)
    async with running(SETTINGS, service_settings=quick) as harness:
        client = await harness.login(user="user2", group="group2")
        assert await client.call("SUBSCRIBE q") == "OK"
        assert await client.call("USE_GROUP group3") == "OK"
        assert await client.call("SUBSCRIBE q") == "OK"
        heartbeat = harness.service.heartbeat
        inside, go_on = asyncio.Event(), asyncio.Event()

        async def held_first(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("namespace") == "group2" and not go_on.is_set():
                inside.set()
                await go_on.wait()
            return await heartbeat(*args, **kwargs)

        harness.service.heartbeat = held_first  # type: ignore[method-assign]
        async with asyncio.timeout(5):
            await inside.wait()  # renew() is in group2's heartbeat; group3 comes next
        assert await client.call("UNSUBSCRIBE q") == "OK"  # leaves group3
        go_on.set()
        await asyncio.sleep(0.5)
        records = await harness.service.list_workers(None)
        assert [member.namespace for member in records] == ["group2"]
        await harness.service.kick_worker("group2", records[0].id)
        assert await client.closed(timeout=2.0)


async def test_an_errored_job_follows_the_queue_policy_without_ignore() -> None:
    settings = TcpSettings(job_timeout=0)
    async with running(settings) as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        publisher = await harness.login(group="group1")
        job_id = (await publisher.call("PUBLISH q task x"))[3:]
        await worker.dispatched()
        assert await worker.call(f"UPDATE_JOB {job_id} errored") == "OK"
        job = await harness.service.get("group1", job_id)
        assert job.state is JobState.SCHEDULED and job.run_at > harness.service.clock.now()
        (listed,) = await publisher.json("LIST_JOBS q")
        assert (listed["State"], listed["Attempts"]) == ("errored", 1)


async def test_published_jobs_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "shoal.db")
    async with running(SETTINGS, store=SqliteStore(path)) as harness:
        publisher = await harness.login(group="group1")
        await publisher.send("".join(f"PUBLISH kept t {n}\n" for n in range(3)))
        ids = [(await publisher.line())[3:] for _ in range(3)]
    async with running(SETTINGS, store=SqliteStore(path)) as harness:
        worker = await harness.login(group="group1")
        assert [job["ID"] for job in await worker.json("LIST_JOBS kept")] == ids
        assert await worker.call("SUBSCRIBE kept") == "OK"
        for job_id in ids:
            assert (await worker.dispatched())["ID"] == job_id
            assert await worker.call(f"UPDATE_JOB {job_id} done") == "OK"


@pytest.mark.parametrize("job_timeout", [0.0, 0.3])
async def test_done_jobs_are_kept_job_timeout_seconds(job_timeout: float) -> None:
    async with running(TcpSettings(job_timeout=job_timeout)) as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        job_ids = []
        for n in range(3):
            job_ids.append((await worker.call(f"PUBLISH q t {n}"))[3:])
            assert (await worker.dispatched())["ID"] == job_ids[-1]
            assert await worker.call(f"UPDATE_JOB {job_ids[-1]} done") == "OK"
        if job_timeout:
            listed = await worker.json("LIST_JOBS q")
            assert [(job["ID"], job["State"]) for job in listed] == [(i, "done") for i in job_ids]
            await asyncio.sleep(job_timeout + 0.2)
        assert await worker.call("LIST_JOBS q") == "null"
        assert (await harness.service.stats("group1")).total == 0


class LateNoticeStore(MemoryStore):
    """A memory store shared with another writer: once armed, the next empty claim is followed
    by the other writer's enqueue, whose notice comes in the next loop turn (as a NOTIFY does).
    """

    def __init__(self) -> None:
        super().__init__()
        self.other_writer: tuple[Job, Callable[[], None]] | None = None

    async def claim(self, request: ClaimRequest) -> list[Job]:
        jobs = await super().claim(request)
        if not jobs and self.other_writer is not None:
            (job, notice), self.other_writer = self.other_writer, None
            await self.enqueue([job], job.created_at)
            asyncio.get_running_loop().call_soon(notice)
        return jobs


async def test_a_notice_just_after_an_empty_claim_wakes_the_worker() -> None:
    # The notice arrives in the loop turn after the empty claim, before the worker's wait has
    # registered: it must still wake the worker, not leave it idle until the next poll (5 s).
    store = LateNoticeStore()
    async with running(SETTINGS, store=store) as harness:
        job = make_job(namespace="group1", queue="jobs")
        store.other_writer = (job, lambda: harness.service.ready.notify("group1", "jobs"))
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE jobs") == "OK"
        dispatched = await worker.dispatched(timeout=1.0)
        assert dispatched["ID"] == job.id and store.other_writer is None
