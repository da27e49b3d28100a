"""The TCP listener's graceful stop: workers holding a job get `server.grace_period` to report
it (as gRPC workers do); connections holding none are closed at once, and no job is pushed
once the stop began.
"""

from __future__ import annotations

import asyncio
import json
import select
import signal
import socket
import time
from pathlib import Path

import pytest

from shoal.core.model import JobState
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2
from tests.integration._grpc_server import Client as GrpcClient
from tests.integration._grpc_server import start_server
from tests.integration._tcp import running


class _Line:
    """A blocking line client of the TCP protocol (the server runs in another process)."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.lines = self.sock.makefile("r", encoding="utf-8")

    def call(self, line: str) -> str:
        self.sock.sendall(f"{line}\n".encode())
        return self.lines.readline().rstrip("\n")

    def closed_within(self, seconds: float) -> bool:
        """Whether the server ends the connection within `seconds`, sending nothing more
        (a timed-out read would spoil the file object: `select` waits instead).
        """
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return bool(readable) and self.lines.readline() == ""

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


def _login(address: str) -> _Line:
    client = _Line(address)
    assert client.call("AUTH someone secret") == "Welcome!"
    assert client.call("USE_GROUP default") == "OK"
    return client


@pytest.mark.slow
def test_sigterm_lets_a_tcp_worker_finish_its_job(tmp_path: Path) -> None:
    args = ("--tcp-listen", "127.0.0.1:0", "--set", "server.grace_period=20")
    server = start_server(tmp_path, *args)
    clients: list[_Line] = []
    try:
        address = server.ready["tcp"]
        worker, idle_worker, producer = (_login(address) for _ in range(3))
        clients += [worker, idle_worker, producer]
        assert worker.call("SUBSCRIBE work") == "OK"
        assert idle_worker.call("SUBSCRIBE elsewhere") == "OK"
        job_id = producer.call("PUBLISH work report {}").removeprefix("OK#")
        dispatched = json.loads(worker.lines.readline())
        assert dispatched["Job"]["ID"] == job_id
        assert worker.call(f"UPDATE_JOB {job_id} in-progress") == "OK"
        # queued behind the job held: it must not be pushed to the worker once the stop began
        later_id = producer.call("PUBLISH work report {}").removeprefix("OK#")

        stopping = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        # the connections holding no job are closed at once, not after the grace period
        assert idle_worker.closed_within(5) and producer.closed_within(5)
        assert time.monotonic() - stopping < 5
        # the worker holding a job is not: its outcome is still taken
        assert not worker.closed_within(0.5)
        assert worker.call(f"UPDATE_JOB {job_id} done") == "OK"
        assert worker.closed_within(5)  # then it is closed, with no new job pushed
        assert server.wait(15) == 0
        assert time.monotonic() - stopping < 15  # well within the 20 s grace
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert "jobs released" not in server.stderr()
    again = start_server(tmp_path)  # the same SQLite file: the outcome was kept
    try:
        with again.channel() as channel:
            jobs = GrpcClient(channel).jobs
            job = jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
            assert job.state == model_pb2.JOB_STATE_SUCCEEDED and job.attempt == 1
            later = jobs.GetJob(jobs_pb2.GetJobRequest(id=later_id))
            assert later.state == model_pb2.JOB_STATE_QUEUED and later.attempt == 0
    finally:
        again.stop()


async def test_a_job_not_reported_within_the_grace_period_is_released() -> None:
    async with running() as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        producer = await harness.login(group="group1")
        job_id = (await producer.call("PUBLISH q t {}")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == job_id
        loop = asyncio.get_running_loop()
        started = loop.time()
        closing = asyncio.ensure_future(harness.server.close(grace=0.5))
        assert await producer.closed(timeout=0.4)  # at once: it holds no job
        assert await worker.closed(timeout=5)
        await closing
        assert loop.time() - started >= 0.5
        job = await harness.service.get("group1", job_id)
        assert job.state is JobState.QUEUED and job.worker_id is None


async def test_errored_is_taken_within_the_grace_period_and_nothing_more_is_pushed() -> None:
    async with running() as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        producer = await harness.login(group="group1")
        job_id = (await producer.call("PUBLISH q t {}")).removeprefix("OK#")
        assert (await worker.dispatched())["ID"] == job_id
        closing = asyncio.ensure_future(harness.server.close(grace=30))
        assert await producer.closed(timeout=2)
        with pytest.raises((ConnectionError, OSError)):  # no new connection is taken
            _, writer = await asyncio.open_connection("127.0.0.1", harness.port)
            writer.close()
        # the upstream settings retry an errored job at once (IGNORE): it is not pushed again
        assert await worker.call(f"UPDATE_JOB {job_id} errored") == "OK"
        assert await worker.closed(timeout=2)
        await asyncio.wait_for(closing, 2)  # the stop ends with the last job, not the grace
        job = await harness.service.get("group1", job_id)
        assert job.state in (JobState.QUEUED, JobState.SCHEDULED) and job.worker_id is None
        assert job.attempt == 1 and job.error is not None
