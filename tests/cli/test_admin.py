"""`shoal.sdk.Admin` in process over `memory://` (the same calls the CLI makes over gRPC)."""

from __future__ import annotations

import pytest

from shoal.core.errors import ConfigError, Conflict, NotFound, ShoalError
from shoal.core.model import JobQuery, JobState
from shoal.core.schedules import ScheduleInput
from shoal.core.validation import EnqueueRequest
from shoal.sdk import Admin


async def test_jobs_queues_and_schedules_in_process() -> None:
    async with Admin("memory://", namespace="ops") as admin:
        first = await admin.enqueue(EnqueueRequest(task="t", namespace="ops", queue="a"))
        await admin.enqueue(EnqueueRequest(task="t", namespace="ops", queue="b"))
        page = await admin.list_jobs(JobQuery(namespace="ops", queue="a"))
        assert [job.id for job in page.jobs] == [first.job.id]

        assert (await admin.cancel_job(first.job.id)).state is JobState.CANCELLED
        assert (await admin.retry_job(first.job.id)).state is JobState.QUEUED
        with pytest.raises(Conflict):
            await admin.retry_job(first.job.id)
        await admin.delete_job(first.job.id)
        with pytest.raises(NotFound):
            await admin.get_job(first.job.id)

        await admin.pause_queue("b")
        assert [(q.name, q.paused) for q in await admin.list_queues()] == [("b", True)]
        await admin.resume_queue("b")
        assert (await admin.queue_stats("b")).by_state[JobState.QUEUED] == 1
        assert await admin.purge_queue("b") == 1

        view = await admin.add_schedule(
            ScheduleInput(task="t", namespace="ops", id="s", every_ms=500)
        )
        assert [s.id for s in await admin.list_schedules()] == ["s"]
        fires = await admin.upcoming_fires("s", 3)
        assert fires[0] == view.next_fire_at and len(fires) == 3
        assert (await admin.pause_schedule("s")).paused
        assert not (await admin.resume_schedule("s")).paused
        assert (await admin.trigger_schedule("s")).job.schedule_id == "s"
        await admin.remove_schedule("s")


async def test_not_open_and_bad_urls() -> None:
    admin = Admin("grpc://127.0.0.1:1")
    with pytest.raises(ShoalError, match="not open"):
        await admin.list_queues()
    with pytest.raises(ConfigError):
        await Admin("redis://x").open()
