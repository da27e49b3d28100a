"""What a TCP command may do with the rights of the user who sends it: a refused command
changes nothing, and what a user sees is limited to the groups it may read.
"""

from __future__ import annotations

from shoal.core.auth import Role
from shoal.core.model import JobState
from tests.integration._tcp import _hashed, running


async def test_a_refused_delete_job_leaves_the_running_job_alone() -> None:
    async with running() as harness:
        await harness.access.declare_user(
            "producer", _hashed("pw"), {"group1": frozenset({Role.PRODUCER})}
        )
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        producer = await harness.login("producer", "pw", "group1")
        job_id = (await producer.call("PUBLISH q t hello")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == job_id

        # A producer may cancel a job but not delete it: DELETE_JOB cancelled it all the same
        assert await producer.call(f"DELETE_JOB {job_id}") == "Err: forbidden"

        job = await harness.service.get("group1", job_id)
        assert (job.state, job.cancel_requested) == (JobState.RUNNING, False)
        assert await worker.call(f"UPDATE_JOB {job_id} done") == "OK"
        assert (await harness.service.get("group1", job_id)).state is JobState.SUCCEEDED


async def test_health_counts_only_the_groups_the_user_may_read() -> None:
    async with running() as harness:
        root = await harness.login("superuser", "superuser", "group1")
        for queue in ("a", "b", "c"):
            assert (await root.call(f"PUBLISH {queue} t x")).startswith("OK#")
        # user2 may not select group1 (forbidden-group), and its HEALTH counted group1 all the same
        other = await harness.login("user2", "pass1", "group2")
        assert await other.call("USE_GROUP group1") == "Err: forbidden-group"
        health = await other.json("HEALTH")
        assert (health["NumQueues"], health["NumJobs"]) == (0, 0)
        assert (await root.json("HEALTH"))["NumJobs"] == 3
