"""Leases over the wire: a killed worker's job moves on at once, a hung worker's after its
lease expires, and a stale lease's outcome is refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2, workers_pb2
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import Client, error_code, start_server, start_worker

workers = harness.workers


@pytest.mark.crash
@pytest.mark.slow
def test_killed_worker_job_restarts_elsewhere_at_once(tmp_path: Path, workers: list) -> None:
    server = start_server(tmp_path)
    try:
        with server.channel() as channel:
            client = Client(channel)
            doomed = start_worker(server.address)
            workers.append(doomed)
            job_id = client.enqueue("sleep", {"seconds": 5})
            first = doomed.expect("started")
            spare = start_worker(server.address)
            workers.append(spare)
            time.sleep(max(first["at"] + 1.0 - time.time(), 0))  # one second into the job
            doomed.kill()
            killed_at = time.time()
            second = spare.expect("started", timeout=5)
            assert second["job_id"] == job_id and second["attempt"] == 2
            assert second["at"] - killed_at < 0.5, second["at"] - killed_at

            job = client.wait(job_id)
            assert job.state == model_pb2.JOB_STATE_SUCCEEDED
            assert json.loads(job.result) == {"slept": 5}
            assert job.attempt == 2
            spare.expect("ack", where=lambda e: e["job_id"] == job_id)
            assert [e["job_id"] for e in spare.events if e["event"] == "finished"] == [job_id]

            # the dead lease's token is fenced: a late completion is refused
            late = workers_pb2.CompleteRequest(job_id=job_id, token=first["token"], result=b"1")
            with pytest.raises(grpc.RpcError) as refused:
                client.workers.Complete(late, timeout=5)
            assert refused.value.code() is grpc.StatusCode.ABORTED
            assert error_code(refused.value) == "lease_lost"
            assert client.wait(job_id).result == job.result  # nothing changed
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_hung_worker_loses_its_lease_after_the_ttl(tmp_path: Path, workers: list) -> None:
    server = start_server(
        tmp_path,
        "--set",
        "service.lease_ttl=1",
        "--set",
        "service.heartbeat_interval=0.25",
        "--set",
        "server.grace_period=0.5",  # the hung worker never drains
    )
    try:
        with server.channel() as channel:
            client = Client(channel)
            hung = start_worker(server.address, "--hang")
            workers.append(hung)
            job_id = client.enqueue("sleep", {"seconds": 0.5})
            first = hung.expect("started")
            spare = start_worker(server.address)
            workers.append(spare)
            second = spare.expect("started", timeout=5)
            assert second["job_id"] == job_id and second["attempt"] == 2
            # not before the lease expired (1 s), and soon after (the reaper runs every 0.5 s)
            assert 1.0 <= second["at"] - first["at"] < 2.5, second["at"] - first["at"]
            job = client.wait(job_id)
            assert job.state == model_pb2.JOB_STATE_SUCCEEDED and job.attempt == 2
            assert hung.proc.poll() is None  # it kept its connection all along
            members = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
            states = {member.id: member.state for member in members}
            hung_id = hung.events[0]["worker_id"]
            assert states[hung_id] == model_pb2.WORKER_STATE_LOST
            with pytest.raises(grpc.RpcError) as refused:
                request = workers_pb2.CompleteRequest(job_id=job_id, token=first["token"])
                client.workers.Complete(request, timeout=5)
            assert refused.value.code() is grpc.StatusCode.ABORTED
    finally:
        assert server.stop() == 0


def test_cancel_reaches_the_running_worker(tmp_path: Path, workers: list) -> None:
    server = start_server(tmp_path, "--set", "service.heartbeat_interval=1")
    try:
        with server.channel() as channel:
            client = Client(channel)
            worker = start_worker(server.address)
            workers.append(worker)
            job_id = client.enqueue("sleep", {"seconds": 30})
            worker.expect("started")
            asked_at = time.time()
            requested = client.jobs.CancelJob(jobs_pb2.CancelJobRequest(id=job_id))
            assert requested.state == model_pb2.JOB_STATE_RUNNING and requested.cancel_requested
            stopped = worker.expect("cancelled", timeout=5)
            assert stopped["at"] - asked_at < 1.0  # within one heartbeat interval
            job = client.wait(job_id, timeout=10)
            assert job.state == model_pb2.JOB_STATE_CANCELLED
    finally:
        assert server.stop() == 0
