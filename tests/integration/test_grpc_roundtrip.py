"""A job enqueued by this process runs on a worker process and its result is read back."""

from __future__ import annotations

import json

import pytest

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2, queues_pb2, workers_pb2
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import Client, ServerProcess, start_worker

client = harness.client
server = harness.server
workers = harness.workers


def test_enqueue_run_and_read_back(server: ServerProcess, client: Client, workers: list) -> None:
    workers.append(start_worker(server.address))
    job_id = client.enqueue("add", {"a": 2, "b": 40})
    job = client.wait(job_id)
    assert job.state == model_pb2.JOB_STATE_SUCCEEDED
    assert json.loads(job.result) == 42
    assert job.attempt == 1
    assert job.HasField("finished_at") and job.finished_at >= job.created_at


def test_batched_enqueue_spreads_over_workers(
    server: ServerProcess, client: Client, workers: list
) -> None:
    workers.extend(start_worker(server.address, "--concurrency", "4") for _ in range(2))
    request = jobs_pb2.EnqueueManyRequest(
        jobs=[
            jobs_pb2.EnqueueRequest(task="add", payload=json.dumps({"a": i, "b": 1}).encode())
            for i in range(40)
        ]
    )
    results = client.jobs.EnqueueMany(request, timeout=10).results
    assert len(results) == 40 and all(item.created for item in results)
    finished = [client.wait(item.job.id) for item in results]
    assert [json.loads(job.result) for job in finished] == [i + 1 for i in range(40)]
    assert {job.worker_id for job in finished} == {""}  # the lease is gone once finished
    stats = client.queues.GetQueueStats(queues_pb2.GetQueueStatsRequest(queue="default"))
    assert stats.by_state.counts["succeeded"] == 40 and stats.total == 40


def test_failure_is_recorded_with_its_error(
    server: ServerProcess, client: Client, workers: list
) -> None:
    workers.append(start_worker(server.address))
    job = client.wait(client.enqueue("fail", None, max_attempts=3))
    assert job.state == model_pb2.JOB_STATE_FAILED
    assert job.error.type == "ValueError" and not job.error.retryable
    assert job.attempt == 1  # not retryable: no second attempt


@pytest.mark.crash
def test_workers_are_listed_while_connected(
    server: ServerProcess, client: Client, workers: list
) -> None:
    worker = start_worker(server.address, "--queue", "a", "--queue", "b", "--concurrency", "3")
    workers.append(worker)
    listed = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
    assert len(listed) == 1
    (info,) = listed
    assert list(info.queues) == ["a", "b"] and info.concurrency == 3
    assert info.language == "python" and info.pid == worker.proc.pid
    assert info.state == model_pb2.WORKER_STATE_IDLE and info.heartbeat_age < 5
    worker.kill()
    assert _eventually(
        lambda: not client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
    )


def _eventually(check, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False
