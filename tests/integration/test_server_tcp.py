"""The TCP text protocol on the same server: a job published over TCP is read over gRPC."""

from __future__ import annotations

import socket
from pathlib import Path

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2
from tests.integration._grpc_server import Client, start_server


def test_tcp_and_grpc_share_one_service(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--tcp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
    try:
        host, port = server.ready["tcp"].rsplit(":", 1)
        assert host == "127.0.0.1" and server.ready["http"] != server.ready["tcp"]
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            replies = conn.makefile("r", encoding="utf-8")

            def say(line: str) -> str:
                conn.sendall(f"{line}\n".encode())
                return replies.readline().rstrip("\r\n")

            assert say("PING") == "PONG"
            assert say("AUTH someone secret") == "Welcome!"
            assert say("USE_GROUP default") == "OK"
            published = say("PUBLISH from-tcp report {}")
            assert published.startswith("OK#"), published
        job_id = published.removeprefix("OK#")
        with server.channel() as channel:
            job = Client(channel).jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
        assert (job.queue, job.task, job.state) == (
            "from-tcp",
            "report",
            model_pb2.JOB_STATE_QUEUED,
        )
    finally:
        assert server.stop() == 0


def test_jobatator_gateway_on_the_http_port(tmp_path: Path) -> None:
    import httpx

    server = start_server(tmp_path, "--tcp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
    try:
        commands = ["AUTH u p", "USE_GROUP default", "PUBLISH via-gateway report {}", "PING"]
        answer = httpx.post(
            f"http://{server.ready['http']}/gateway", json={"commands": commands}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["success"] is True and body["errors"] == []
        assert body["data"][0] == "Welcome!" and body["data"][-1] == "PONG"
        job_id = body["data"][2].removeprefix("OK#")
        with server.channel() as channel:
            job = Client(channel).jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
        assert job.queue == "via-gateway"
    finally:
        assert server.stop() == 0


def test_the_tcp_section_of_the_config_reaches_the_tcp_listener(tmp_path: Path) -> None:
    # the [tcp] keys docs/tcp-protocol.md names did not exist: test mode could not be set
    (tmp_path / "plain").mkdir()
    (tmp_path / "testing").mkdir()
    plain = start_server(tmp_path / "plain", "--tcp-listen", "127.0.0.1:0")
    testing = start_server(
        tmp_path / "testing", "--tcp-listen", "127.0.0.1:0", "--set", "tcp.test_mode=on"
    )
    try:
        replies = []
        for server in (plain, testing):
            host, port = server.ready["tcp"].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as conn:
                conn.sendall(b"DEBUG_PARTS a b\n")
                replies.append(conn.makefile("r", encoding="utf-8").readline().rstrip("\r\n"))
        assert replies[0].startswith("Err:") and not replies[1].startswith("Err:"), replies
    finally:
        assert plain.stop() == 0 and testing.stop() == 0
