"""Ocelot compatibility: an Ocelot producer's job instances run on shoal workers and their
outcomes stream back, as from an Ocelot worker pool.
"""

from __future__ import annotations

import json
import time

from shoal.protocols.grpc.gen.ocelot import ocelot_pb2, ocelot_pb2_grpc
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import Client, ServerProcess, start_worker

server = harness.server
client = harness.client
workers = harness.workers
Instance = ocelot_pb2.JobInstanceMsg


def test_instances_stream_back_with_their_outcome(
    server: ServerProcess, client: Client, workers: list
) -> None:
    workers.append(start_worker(server.address, "--queue", "ocelot", "--concurrency", "2"))
    ocelot = ocelot_pb2_grpc.OcelotWorkerStub(client.channel)
    now = time.time_ns()
    sent = [
        Instance(JobID="j1", InstanceID="i1", Ctime=now, Params={"type": "echo", "key": "a"}),
        Instance(JobID="j1", InstanceID="i2", Ctime=now, Params={"type": "fail"}),
        Instance(JobID="j2", InstanceID="i3", Ctime=now, Params={"type": "bad type"}),
    ]
    replies = {reply.InstanceID: reply for reply in ocelot.ExecuteStream(iter(sent), timeout=30)}
    assert set(replies) == {"i1", "i2", "i3"}
    assert replies["i1"].Success and replies["i1"].Mtime >= now
    assert dict(replies["i1"].Params) == {"type": "echo", "key": "a"}
    assert not replies["i2"].Success and replies["i2"].Mtime >= now
    assert not replies["i3"].Success  # not a task name: refused, nothing enqueued

    jobs = client.jobs.ListJobs(jobs_pb2.ListJobsRequest(queue="ocelot")).jobs
    echoed = next(job for job in jobs if job.task == "echo")
    body = json.loads(echoed.result)
    assert body == {
        "job_id": "j1",
        "instance_id": "i1",
        "ctime": now,
        "params": dict(sent[0].Params),
    }
    assert len(jobs) == 2


def test_execute_enqueues_and_echoes(server: ServerProcess, client: Client) -> None:
    ocelot = ocelot_pb2_grpc.OcelotWorkerStub(client.channel)
    instance = Instance(JobID="j", InstanceID="once", Params={"type": "S3", "bucket": "b"})
    assert ocelot.Execute(instance, timeout=10) == instance
    assert ocelot.Execute(instance, timeout=10) == instance  # the same instance: one job
    (job,) = client.jobs.ListJobs(jobs_pb2.ListJobsRequest(queue="ocelot")).jobs
    assert job.task == "S3" and job.state == model_pb2.JOB_STATE_QUEUED
