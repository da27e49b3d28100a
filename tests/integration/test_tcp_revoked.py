"""A TCP worker whose user is removed while it holds a job: its connection no longer renews
the job's lease, so the reaper gives the job back (it held it for as long as it stayed open).
"""

from __future__ import annotations

import asyncio

from shoal.core.auth import Principal, Role
from shoal.core.model import JobState
from shoal.core.service import ServiceSettings
from tests.integration._tcp import running

_ROOT = Principal("root", "password", {"*": frozenset({Role.ADMIN})})


async def test_a_revoked_tcp_worker_stops_renewing_the_lease_of_its_job() -> None:
    settings = ServiceSettings(lease_ttl=1.0, heartbeat_interval=0.3)
    async with running(service_settings=settings) as harness:
        worker = await harness.login("user1", "pass1", group="group1")
        assert await worker.call("SUBSCRIBE jobs") == "OK"
        producer = await harness.login("superuser", "superuser", group="group1")
        assert (await producer.call("PUBLISH jobs t payload")).startswith("OK#")
        job_id = (await worker.dispatched())["ID"]
        await harness.access.remove_user(_ROOT, "user1")
        assert (await worker.call(f"UPDATE_JOB {job_id} done")).startswith("Err:")
        await asyncio.sleep(1.5)  # past its lease: no longer renewed
        reaped = await harness.service.reap_expired()
        assert [job.id for job in reaped] == [job_id]
        assert (await harness.service.get("group1", job_id)).state is JobState.QUEUED
