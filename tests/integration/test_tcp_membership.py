"""A TCP connection as a cluster member: listed in every group it works for, with an id of its
own in each, and kicked or drained per group as the gRPC streams are (the TCP surface ignored
both: a kicked connection kept taking jobs as a worker no one could list or kick again).
"""

from __future__ import annotations

import asyncio

from shoal.core.model import Job, JobQuery, JobState, WorkerState
from shoal.core.ports import ClaimRequest
from shoal.core.validation import EnqueueRequest
from shoal.stores.memory import MemoryStore
from tests.integration._tcp import running


async def test_a_kicked_connection_hangs_up_and_its_job_goes_back() -> None:
    async with running() as harness:
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        producer = await harness.login("user1", "pass1", "group1")
        job_id = (await producer.call("PUBLISH q t a")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == job_id
        [member] = await harness.service.list_workers("group1")

        assert [job.id for job in await harness.service.kick_worker("group1", member.id)] == [
            job_id
        ]

        assert await worker.closed()
        assert await harness.service.list_workers("group1") == []
        assert (await harness.service.get("group1", job_id)).state is JobState.QUEUED


async def test_a_drained_connection_finishes_its_job_and_takes_no_more() -> None:
    async with running() as harness:
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        producer = await harness.login("user1", "pass1", "group1")
        first = (await producer.call("PUBLISH q t a")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == first
        [member] = await harness.service.list_workers("group1")
        await harness.service.drain_worker("group1", member.id)

        second = (await producer.call("PUBLISH q t b")).removeprefix("OK#")
        assert await worker.call(f"UPDATE_JOB {first} done") == "OK"
        assert await worker.call("PING") == "PONG"  # no dispatch line came before the answer
        assert (await harness.service.get("group1", second)).state is JobState.QUEUED


async def test_a_connection_in_two_groups_is_a_worker_of_each() -> None:
    async with running() as harness:
        worker = await harness.login("superuser", "superuser", "group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        assert await worker.call("USE_GROUP group2") == "OK"
        assert await worker.call("SUBSCRIBE q") == "OK"
        # one record, moved to group2 by the second SUBSCRIBE: group1 could not see it
        [in_one] = await harness.service.list_workers("group1")
        [in_two] = await harness.service.list_workers("group2")
        assert in_one.id != in_two.id

        producer = await harness.login("superuser", "superuser", "group2")
        theirs = (await producer.call("PUBLISH q t a")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == theirs
        released = await harness.service.kick_worker("group2", in_two.id)
        assert [job.id for job in released] == [theirs]
        assert await harness.service.list_workers("group2") == []

        # still group1's worker: the connection stays and takes group1's jobs
        assert await producer.call("USE_GROUP group1") == "OK"
        mine = (await producer.call("PUBLISH q t b")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == mine
        assert await worker.call(f"UPDATE_JOB {mine} done") == "OK"
        assert [w.id for w in await harness.service.list_workers("group1")] == [in_one.id]


async def test_unsubscribing_shows_in_the_worker_record() -> None:
    async with running() as harness:
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE a") == "OK"
        assert await worker.call("SUBSCRIBE b") == "OK"
        assert await worker.call("UNSUBSCRIBE a") == "OK"
        # the record still listed queue a
        [member] = await harness.service.list_workers("group1")
        assert member.queues == ("b",)
        assert await worker.call("UNSUBSCRIBE b") == "OK"
        assert await harness.service.list_workers("group1") == []
        assert await worker.call("SUBSCRIBE c") == "OK"  # a worker again
        [member] = await harness.service.list_workers("group1")
        assert member.queues == ("c",)


async def test_a_drained_connection_stays_draining_when_it_subscribes_again() -> None:
    async with running() as harness:
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE a") == "OK"
        [member] = await harness.service.list_workers("group1")
        await harness.service.drain_worker("group1", member.id)
        await asyncio.sleep(0.1)  # the hub routes the drain
        # its record was written again, not draining, while it still claimed nothing
        assert await worker.call("SUBSCRIBE b") == "OK"
        [member] = await harness.service.list_workers("group1")
        assert member.state is WorkerState.DRAINING


class _SlowToAnswerClaims(MemoryStore):
    """A store whose claims commit, then take a while to return (a busy server)."""

    async def claim(self, request: ClaimRequest) -> list[Job]:
        jobs = await super().claim(request)
        if jobs:
            await asyncio.sleep(0.3)
        return jobs


async def test_the_last_unsubscribe_gives_back_what_a_claim_under_way_took_unstarted() -> None:
    async with running(store=_SlowToAnswerClaims()) as harness:
        await harness.service.enqueue(EnqueueRequest("t", namespace="group1", queue="a"))
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE a") == "OK"
        await asyncio.sleep(0.1)  # the claim has leased the job and not yet returned
        # the worker left at once: its lease was lost, the attempt counted for a job it never got
        assert await worker.call("UNSUBSCRIBE a") == "OK"
        [job] = (await harness.service.list_jobs(JobQuery(namespace="group1"))).jobs
        assert (job.state, job.attempt, job.error) == (JobState.QUEUED, 0, None)
        assert await harness.service.list_workers("group1") == []
