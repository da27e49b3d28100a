"""The Node.js example worker (examples/node-worker) runs jobs of a real server over the
shoal.v1 stream: results, failures, heartbeats and cancellation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import (
    Client,
    Lines,
    ServerProcess,
    WorkerProcess,
    start_server,
)

server = harness.server
client = harness.client

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-worker"


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the example's dependencies installed (`npm ci` if missing)."""
    binary = shutil.which("node")
    assert binary is not None, "Node.js 20 is needed for the Node worker example"
    if not (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install the Node worker's dependencies"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, check=True, timeout=600)
    return binary


@pytest.fixture
def node_worker(node: str, server: ServerProcess) -> Iterator[WorkerProcess]:
    command = [node, "worker.js", "--target", server.address, "--concurrency", "2"]
    proc = subprocess.Popen(command, cwd=EXAMPLE, stdout=subprocess.PIPE, text=True, env=os.environ)
    worker = WorkerProcess(proc, Lines(proc.stdout))
    worker.expect("welcome")
    yield worker
    worker.kill()


def test_node_worker_runs_jobs(client: Client, node_worker: WorkerProcess) -> None:
    added = client.wait(client.enqueue("add", {"a": 20, "b": 22}))
    assert added.state == model_pb2.JOB_STATE_SUCCEEDED
    assert json.loads(added.result) == 42
    echoed = client.wait(client.enqueue("echo", {"hello": "node"}))
    assert json.loads(echoed.result) == {"hello": "node"}
    failed = client.wait(client.enqueue("fail", None, max_attempts=3))
    assert failed.state == model_pb2.JOB_STATE_FAILED
    assert failed.error.message == "asked to fail" and not failed.error.retryable
    assert "worker.js" in failed.error.traceback


def test_node_worker_heartbeats_keep_its_lease(node: str, tmp_path: Path) -> None:
    from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2

    # a lease of 1.5 s and a job of 3 s: only heartbeats (every 0.5 s) keep the first attempt
    server = start_server(
        tmp_path, "--set", "service.lease_ttl=1.5", "--set", "service.heartbeat_interval=0.5"
    )
    command = [node, "worker.js", "--target", server.address]
    proc = subprocess.Popen(command, cwd=EXAMPLE, stdout=subprocess.PIPE, text=True, env=os.environ)
    worker = WorkerProcess(proc, Lines(proc.stdout))
    try:
        worker.expect("welcome")
        with server.channel() as channel:
            client = Client(channel)
            (member,) = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
            assert member.language == "node" and member.pid == proc.pid
            job_id = client.enqueue("sleep", {"seconds": 3})
            worker.expect("started")
            time.sleep(2)
            (member,) = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
            assert member.state == model_pb2.WORKER_STATE_BUSY and member.heartbeat_age < 1.0
            job = client.wait(job_id)
            assert job.state == model_pb2.JOB_STATE_SUCCEEDED and job.attempt == 1
    finally:
        worker.kill()
        assert server.stop() == 0


def test_node_worker_honours_cancellation(client: Client, node_worker: WorkerProcess) -> None:
    job_id = client.enqueue("sleep", {"seconds": 30})
    node_worker.expect("started")
    client.jobs.CancelJob(jobs_pb2.CancelJobRequest(id=job_id))
    node_worker.expect("cancelled", timeout=3)
    assert client.wait(job_id, timeout=10).state == model_pb2.JOB_STATE_CANCELLED


@pytest.mark.slow
def test_node_worker_with_a_token_over_tls(node: str, tmp_path: Path) -> None:
    import grpc

    from ._auth_env import NS, make_pki, role_users, start_auth_server

    pki = make_pki(tmp_path, "nobody")
    ids = role_users()
    tls = f'[tls]\ngrpc_cert = "{pki.server_cert}"\ngrpc_key = "{pki.server_key}"'
    server = start_auth_server(tmp_path, ids, extra=tls, listeners=False)
    env = {**os.environ, "SHOAL_TOKEN": ids.tokens["t-worker"], "SHOAL_CA": str(pki.ca)}
    command = [node, "worker.js", "--target", server.address, "--namespace", NS]
    proc = subprocess.Popen(command, cwd=EXAMPLE, stdout=subprocess.PIPE, text=True, env=env)
    worker = WorkerProcess(proc, Lines(proc.stdout))
    try:
        worker.expect("welcome")  # the worker token and the CA got it in
        producer = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes()),
            grpc.access_token_call_credentials(ids.tokens["t-producer"]),
        )
        with grpc.secure_channel(server.address, producer) as channel:
            client = Client(channel)
            job_id = client.enqueue("add", {"a": 2, "b": 3}, namespace=NS)
            request = jobs_pb2.WaitForJobRequest(namespace=NS, id=job_id, timeout=30)
            job = client.jobs.WaitForJob(request, timeout=35).job
            assert job.state == model_pb2.JOB_STATE_SUCCEEDED and json.loads(job.result) == 5
    finally:
        worker.kill()
        assert server.stop() == 0
