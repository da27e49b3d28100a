"""`shoal server` as a process: its ready line, its one-line start-up errors and exit codes,
and a graceful stop on SIGTERM/SIGINT that lets workers finish or release their jobs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2, workers_pb2
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import (
    Client,
    error_code,
    server_command,
    start_server,
    start_worker,
)

workers = harness.workers


def _fails(*args: str, cwd: Path | None = None) -> tuple[int, list[str]]:
    done = subprocess.run(
        server_command(*args), capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )
    assert done.stdout == ""  # no ready line
    return done.returncode, done.stderr.splitlines()


def test_ready_line_names_the_address_and_store(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        host, port = server.address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert server.store == f"sqlite:///{tmp_path / 'shoal.db'}"
    finally:
        assert server.stop() == 0
    assert "shoal stopped" in server.stderr()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    server = start_server(tmp_path, store="memory://")
    started = time.monotonic()
    assert server.stop(signum) == 0
    assert time.monotonic() - started < 5


def test_port_in_use_is_one_line_and_exit_3(tmp_path: Path) -> None:
    first = start_server(tmp_path, store="memory://")
    try:
        code, lines = _fails("--store", "memory://", "--grpc-listen", first.address)
        assert code == 3
        assert len(lines) == 1 and lines[0].startswith("shoal: error: cannot listen on")
        assert first.address in lines[0]
    finally:
        first.stop()


def test_store_that_cannot_be_opened_is_one_line_and_exit_4(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'shoal.db'}"
    code, lines = _fails("--store", url, "--grpc-listen", "127.0.0.1:0")
    assert code == 4
    assert lines[-1].startswith(f"shoal: error: cannot open store {url}")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[servr]\ngrpc_listen = '127.0.0.1:0'\n", "did you mean 'server'?"),
        ("[service]\nlease_tll = 5\n", "did you mean 'service.lease_ttl'?"),
        ("[service]\nlease_ttl = 'soon'\n", "service.lease_ttl"),
        ("[store]\nurl = 'mongodb://x'\n", "unknown store scheme 'mongodb'"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "shoal.toml"
    config.write_text(toml)
    code, lines = _fails("--config", str(config))
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("shoal: error: ") and message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tcp-listen", "0.0.0.0:0"], "not a loopback address"),
        (["--grpc-listen", "0.0.0.0:0"], "not a loopback address"),
        (["--http-listen", "0.0.0.0:0"], "not a loopback address"),
        (["--grpc-listen", ""], "all off"),
        (["--grpc-listen", "nowhere"], "expected HOST:PORT"),
        (["--set", "service.lease_ttl"], "expected KEY=VALUE"),
    ],
)
def test_refused_flags_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, lines = _fails("--store", "memory://", *args)
    assert code == 2
    assert len(lines) == 1 and message in lines[0], lines


def test_environment_is_a_layer(tmp_path: Path) -> None:
    done = subprocess.run(
        server_command("--store", "memory://"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SHOAL_SERVICE_LEASE_TTLL": "3"},
        check=False,
    )
    assert done.returncode == 2
    assert "did you mean 'service.lease_ttl'?" in done.stderr


@pytest.mark.slow
def test_sigterm_lets_a_running_job_finish(tmp_path: Path, workers: list) -> None:
    server = start_server(tmp_path)
    with server.channel() as channel:
        client = Client(channel)
        worker = start_worker(server.address)
        workers.append(worker)
        job_id = client.enqueue("sleep", {"seconds": 1.5})
        worker.expect("started")
        server.proc.send_signal(signal.SIGTERM)
        worker.expect("drain")
        with pytest.raises(grpc.RpcError) as refused:  # no new work is taken on
            client.workers.Fetch(workers_pb2.FetchRequest(queues=["default"], worker_id="late"))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_code(refused.value) == "unavailable"
        ack = worker.expect("ack")
        assert (ack["job_id"], ack["state"]) == (job_id, "JOB_STATE_SUCCEEDED")
        worker.expect("exit")
    assert server.wait() == 0
    again = start_server(tmp_path)  # the same SQLite file: the outcome was kept
    try:
        with again.channel() as channel:
            job = Client(channel).jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
            assert job.state == model_pb2.JOB_STATE_SUCCEEDED
            assert json.loads(job.result) == {"slept": 1.5}
    finally:
        again.stop()


@pytest.mark.slow
def test_jobs_still_running_after_the_grace_period_are_released(
    tmp_path: Path, workers: list
) -> None:
    server = start_server(tmp_path, "--set", "server.grace_period=1")
    with server.channel() as channel:
        client = Client(channel)
        worker = start_worker(server.address)
        workers.append(worker)
        job_id = client.enqueue("sleep", {"seconds": 60})
        worker.expect("started")
        stopping = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - stopping < 5
    again = start_server(tmp_path)
    try:
        with again.channel() as channel:
            job = Client(channel).jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
            assert job.state == model_pb2.JOB_STATE_QUEUED and job.attempt == 1
            assert job.error.type == "LeaseLost"
    finally:
        again.stop()


def test_a_second_signal_stops_at_once(tmp_path: Path, workers: list) -> None:
    server = start_server(tmp_path, store="memory://")
    with server.channel() as channel:
        worker = start_worker(server.address)  # a worker that never drains: it hangs
        workers.append(worker)
        Client(channel).enqueue("sleep", {"seconds": 60})
        worker.expect("started")
        server.proc.send_signal(signal.SIGTERM)
        worker.expect("drain")
        started = time.monotonic()
        assert server.stop(signal.SIGINT) == 130
        assert time.monotonic() - started < 5  # not the 10 s grace period
