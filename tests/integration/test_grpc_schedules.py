"""Schedules over gRPC: a schedule's slots become jobs; pause, resume, trigger, replace, delete."""

from __future__ import annotations

import time

import grpc
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2, schedules_pb2, schedules_pb2_grpc
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import Client, ServerProcess, error_code

server = harness.server
client = harness.client
Spec = schedules_pb2.ScheduleSpec
Ref = schedules_pb2.ScheduleRef


def _jobs(client: Client, queue: str) -> list[model_pb2.Job]:
    return list(client.jobs.ListJobs(jobs_pb2.ListJobsRequest(queue=queue, limit=1000)).jobs)


def test_schedule_lifecycle(server: ServerProcess, client: Client) -> None:
    schedules = schedules_pb2_grpc.ScheduleServiceStub(client.channel)
    made = schedules.CreateSchedule(
        Spec(id="tick", task="tick", queue="sched", every_ms=200, payload=b'{"n": 1}', tags=["s"])
    )
    assert made.spec.every_ms == 200 and made.spec.overlap == "allow"
    assert made.HasField("next_fire_at") and not made.spec.paused
    deadline = time.monotonic() + 10
    while len(_jobs(client, "sched")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    fired = _jobs(client, "sched")
    assert len(fired) >= 3
    assert {job.schedule_id for job in fired} == {"tick"} and fired[0].payload == b'{"n": 1}'

    paused = schedules.PauseSchedule(Ref(id="tick"))
    assert paused.spec.paused and not paused.HasField("next_fire_at")
    count = len(_jobs(client, "sched"))
    time.sleep(0.5)
    assert len(_jobs(client, "sched")) == count  # no fire while paused
    manual = schedules.TriggerSchedule(Ref(id="tick"))
    assert manual.schedule_id == "tick" and manual.state == model_pb2.JOB_STATE_QUEUED
    resumed = schedules.ResumeSchedule(Ref(id="tick"))
    assert not resumed.spec.paused and resumed.HasField("next_fire_at")

    replaced = schedules.PutSchedule(Spec(id="tick", task="tock", queue="sched", cron="0 0 * * *"))
    assert replaced.spec.cron == "0 0 * * *" and replaced.spec.task == "tock"
    assert replaced.spec.timezone == "UTC"
    (listed,) = schedules.ListSchedules(schedules_pb2.ListSchedulesRequest()).schedules
    assert listed.spec.id == "tick" and not listed.spec.HasField("every_ms")
    schedules.DeleteSchedule(Ref(id="tick"))
    assert list(schedules.ListSchedules(schedules_pb2.ListSchedulesRequest()).schedules) == []
    assert len(_jobs(client, "sched")) >= count + 1  # the jobs stay


@pytest.mark.parametrize(
    ("spec", "status", "code", "field"),
    [
        (Spec(task="t"), grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument", None),
        (Spec(task="t", every_ms=1), grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument", None),
        (
            Spec(task="t", cron="61 * * * *"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_argument",
            None,
        ),
        (
            Spec(task="t", every_ms=1000, overlap="sometimes"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_argument",
            "overlap",
        ),
        (
            Spec(task="a b", every_ms=1000),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_argument",
            "task",
        ),
    ],
)
def test_bad_schedules_are_refused(
    client: Client,
    spec: schedules_pb2.ScheduleSpec,
    status: grpc.StatusCode,
    code: str,
    field: str | None,
) -> None:
    schedules = schedules_pb2_grpc.ScheduleServiceStub(client.channel)
    with pytest.raises(grpc.RpcError) as raised:
        schedules.CreateSchedule(spec)
    assert raised.value.code() is status
    assert error_code(raised.value) == code
    if field is not None:
        metadata = dict(raised.value.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert metadata["shoal-error-field"] == field
    assert list(schedules.ListSchedules(schedules_pb2.ListSchedulesRequest()).schedules) == []


def test_schedule_conflicts_and_unknowns(client: Client) -> None:
    schedules = schedules_pb2_grpc.ScheduleServiceStub(client.channel)
    schedules.CreateSchedule(Spec(id="once", task="t", at=time.time() + 3600))
    with pytest.raises(grpc.RpcError) as taken:
        schedules.CreateSchedule(Spec(id="once", task="t", at=time.time() + 3600))
    assert taken.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    for call in (schedules.GetSchedule, schedules.PauseSchedule, schedules.DeleteSchedule):
        with pytest.raises(grpc.RpcError) as unknown:
            call(Ref(id="nope"))
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
