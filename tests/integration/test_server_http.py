"""One server process, two surfaces: a job enqueued over gRPC is read over HTTP and back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from shoal.protocols.grpc.gen.shoal.v1 import admin_pb2, admin_pb2_grpc, jobs_pb2, model_pb2
from tests.integration._grpc_server import Client, start_server


def test_grpc_and_http_share_one_service(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--http-listen", "127.0.0.1:0")
    try:
        http = server.ready["http"]
        assert http.startswith("127.0.0.1:") and http != server.address
        base = f"http://{http}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        with server.channel() as channel:
            client = Client(channel)
            job_id = client.enqueue("report", {"n": 1}, queue="both")
            seen = httpx.get(f"{base}/api/v1/jobs/{job_id}", timeout=10)
            assert seen.status_code == 200 and seen.json()["queue"] == "both"
            posted = httpx.post(
                f"{base}/api/v1/jobs", json={"task": "from-http", "payload": {"x": 1}}, timeout=10
            )
            assert posted.status_code == 201, posted.text
            made = posted.json()
            made_id = made["job"]["id"] if "job" in made else made["id"]
            job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=made_id))
            assert job.task == "from-http" and job.state == model_pb2.JOB_STATE_QUEUED
            assert json.loads(job.payload) == {"x": 1}
    finally:
        assert server.stop() == 0


def test_http_port_in_use_is_one_line_and_exit_3(tmp_path: Path) -> None:
    import subprocess

    from tests.integration._grpc_server import server_command

    first = start_server(tmp_path, "--http-listen", "127.0.0.1:0", store="memory://")
    try:
        done = subprocess.run(
            server_command(
                "--store",
                "memory://",
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                first.ready["http"],
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3
        assert done.stderr.splitlines()[-1].startswith("shoal: error: cannot listen on")
    finally:
        first.stop()


def test_a_namespace_deleted_over_grpc_leaves_the_http_metrics(tmp_path: Path) -> None:
    # HTTP keeps counters, histograms and chart series per namespace; it forgot them only when
    # the namespace was deleted through its own API, and /metrics kept reporting the rest
    server = start_server(tmp_path, "--http-listen", "127.0.0.1:0", store="memory://")
    try:
        base = f"http://{server.ready['http']}"
        with server.channel() as channel:
            client, admin = Client(channel), admin_pb2_grpc.AdminServiceStub(channel)
            admin.CreateNamespace(admin_pb2.CreateNamespaceRequest(name="solo"), timeout=10)
            job_id = client.enqueue("t", namespace="solo", queue="q")
            # its job deleted (not its queue: that alone forgets the namespace), it is empty
            client.jobs.DeleteJob(jobs_pb2.DeleteJobRequest(namespace="solo", id=job_id))
            assert 'namespace="solo"' in httpx.get(f"{base}/metrics", timeout=10).text
            admin.DeleteNamespace(admin_pb2.DeleteNamespaceRequest(name="solo"), timeout=10)
        assert "solo" not in httpx.get(f"{base}/metrics", timeout=10).text
        listed = httpx.get(f"{base}/api/v1/namespaces", timeout=10).json()["namespaces"]
        assert "solo" not in listed
    finally:
        assert server.stop() == 0
