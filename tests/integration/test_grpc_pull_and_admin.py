"""The unary pull path, queue and worker controls, and the event stream, over real gRPC."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from shoal.core.ids import worker_id_of
from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    model_pb2,
    queues_pb2,
    workers_pb2,
)
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import Client, ServerProcess, error_code, start_worker

server = harness.server
client = harness.client
workers = harness.workers


def _fetch(client: Client, queue: str, wait: float = 0.0) -> list[workers_pb2.Assignment]:
    request = workers_pb2.FetchRequest(queues=[queue], worker_id="puller", wait=wait, limit=5)
    return list(client.workers.Fetch(request, timeout=wait + 10).assignments)


def test_fetch_long_polls_until_a_job_is_enqueued(client: Client) -> None:
    started = time.monotonic()
    assert _fetch(client, "pull", wait=0.3) == []
    assert 0.25 <= time.monotonic() - started < 2
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_fetch, client, "pull", 10.0)
        time.sleep(0.3)
        enqueued_at = time.monotonic()
        job_id = client.enqueue("t", queue="pull")
        (assignment,) = waiting.result(timeout=15)
    assert assignment.job.id == job_id and assignment.token
    assert time.monotonic() - enqueued_at < 1.0  # woken, not polled


def test_a_heartbeat_renews_by_what_it_asks_and_never_cuts_a_lease(client: Client) -> None:
    job_id = client.enqueue("t", queue="pull-long")
    request = workers_pb2.FetchRequest(queues=["pull-long"], worker_id="puller", lease_ttl=600)
    (assignment,) = client.workers.Fetch(request, timeout=10).assignments
    fetched_until = assignment.job.lease_expires_at
    lease = model_pb2.Lease(job_id=job_id, token=assignment.token)

    client.workers.Heartbeat(workers_pb2.HeartbeatRequest(leases=[lease]))
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert job.lease_expires_at == fetched_until  # was cut to the server's 15 s from now

    client.workers.Heartbeat(workers_pb2.HeartbeatRequest(leases=[lease], lease_ttl=1200))
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert job.lease_expires_at > fetched_until + 500


def test_a_pull_fetch_may_not_use_a_worker_streams_id(client: Client) -> None:
    # jobs fetched under a live stream's id were released when that stream ended
    request = workers_pb2.FetchRequest(queues=["q"], worker_id=worker_id_of("their secret"))
    with pytest.raises(grpc.RpcError) as refused:
        client.workers.Fetch(request, timeout=10)
    assert error_code(refused.value) == "invalid_argument"


def test_pull_heartbeat_complete_and_fail(client: Client) -> None:
    first = client.enqueue("t", queue="pull-outcomes", max_attempts=2)
    second = client.enqueue("t", queue="pull-outcomes", max_attempts=1)
    leases = {a.job.id: a for a in _fetch(client, "pull-outcomes")}
    assert set(leases) == {first, second}
    expires = leases[first].job.lease_expires_at

    client.jobs.CancelJob(jobs_pb2.CancelJobRequest(id=second))
    beat = client.workers.Heartbeat(
        workers_pb2.HeartbeatRequest(
            leases=[model_pb2.Lease(job_id=a.job.id, token=a.token) for a in leases.values()]
        )
    )
    assert set(beat.renewed) == {first, second} and list(beat.cancel_requested) == [second]
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=first))
    assert job.lease_expires_at > expires

    failure = workers_pb2.FailRequest(
        job_id=first,
        token=leases[first].token,
        error=model_pb2.JobError(type="Flaky", message="try again", retryable=True),
        retry_delay=0.2,
    )
    retried = client.workers.Fail(failure)
    assert retried.state == model_pb2.JOB_STATE_SCHEDULED and retried.error.type == "Flaky"
    (again,) = _fetch(client, "pull-outcomes", wait=5)
    assert again.job.id == first and again.job.attempt == 2 and again.token != leases[first].token

    done = client.workers.Complete(
        workers_pb2.CompleteRequest(job_id=first, token=again.token, result=b'"ok"')
    )
    assert done.state == model_pb2.JOB_STATE_SUCCEEDED and done.result == b'"ok"'
    with pytest.raises(grpc.RpcError) as twice:
        client.workers.Complete(workers_pb2.CompleteRequest(job_id=first, token=again.token))
    assert twice.value.code() is grpc.StatusCode.ABORTED
    assert error_code(twice.value) == "lease_lost"

    cancelled = client.workers.Fail(
        workers_pb2.FailRequest(
            job_id=second, token=leases[second].token, error=model_pb2.JobError(type="Cancelled")
        )
    )
    assert cancelled.state == model_pb2.JOB_STATE_CANCELLED


def test_queue_controls(client: Client) -> None:
    client.queues.PauseQueue(queues_pb2.PauseQueueRequest(queue="ctl"))
    job_id = client.enqueue("t", queue="ctl")
    assert _fetch(client, "ctl") == []
    (queue,) = [
        q
        for q in client.queues.ListQueues(queues_pb2.ListQueuesRequest()).queues
        if q.name == "ctl"
    ]
    assert queue.paused and queue.counts.counts["queued"] == 1
    client.queues.ResumeQueue(queues_pb2.ResumeQueueRequest(queue="ctl"))
    (assignment,) = _fetch(client, "ctl")
    assert assignment.job.id == job_id
    client.enqueue("t", queue="ctl")
    purged = client.queues.PurgeQueue(queues_pb2.PurgeQueueRequest(queue="ctl"))
    assert purged.deleted == 1
    with pytest.raises(grpc.RpcError) as running:
        client.queues.DeleteQueue(queues_pb2.DeleteQueueRequest(queue="ctl"))
    assert running.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    client.workers.Complete(workers_pb2.CompleteRequest(job_id=job_id, token=assignment.token))
    deleted = client.queues.DeleteQueue(queues_pb2.DeleteQueueRequest(queue="ctl"))
    assert deleted.deleted == 1


def test_list_jobs_pages_with_a_cursor(client: Client) -> None:
    ids = [client.enqueue("t", queue="pages", tags=["p"]) for _ in range(5)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = client.jobs.ListJobs(
            jobs_pb2.ListJobsRequest(queue="pages", tag="p", limit=2, cursor=cursor)
        )
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == ids[::-1]  # newest first
    queued = jobs_pb2.ListJobsRequest(queue="pages", state=model_pb2.JOB_STATE_SUCCEEDED)
    assert list(client.jobs.ListJobs(queued).jobs) == []


def test_kick_releases_the_workers_jobs(
    server: ServerProcess, client: Client, workers: list
) -> None:
    worker = start_worker(server.address, "--queue", "kick")
    workers.append(worker)
    job_id = client.enqueue("sleep", {"seconds": 30}, queue="kick")
    worker.expect("started")
    (member,) = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
    kicked = client.workers.KickWorker(workers_pb2.KickWorkerRequest(worker_id=member.id))
    assert list(kicked.released) == [job_id]
    worker.expect("goodbye")
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert job.state == model_pb2.JOB_STATE_QUEUED and job.error.type == "LeaseLost"
    assert list(client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers) == []


def test_drain_lets_the_worker_finish_then_leave(
    server: ServerProcess, client: Client, workers: list
) -> None:
    worker = start_worker(server.address, "--queue", "drain")
    workers.append(worker)
    job_id = client.enqueue("sleep", {"seconds": 1}, queue="drain")
    worker.expect("started")
    (member,) = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
    drained = client.workers.DrainWorker(workers_pb2.DrainWorkerRequest(worker_id=member.id))
    assert drained.state == model_pb2.WORKER_STATE_DRAINING
    worker.expect("drain")
    later = client.enqueue("t", queue="drain")  # not taken by a draining worker
    ack = worker.expect("ack")
    assert (ack["job_id"], ack["state"]) == (job_id, "JOB_STATE_SUCCEEDED")
    worker.expect("exit")
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=later))
    assert job.state == model_pb2.JOB_STATE_QUEUED and job.attempt == 0


def test_event_stream(server: ServerProcess, client: Client, workers: list) -> None:
    events = events_pb2_grpc.EventServiceStub(client.channel)
    stream = events.Subscribe(events_pb2.SubscribeRequest(kinds=["job."]), timeout=30)
    seen: list[events_pb2.Event] = []
    subscribed = threading.Event()

    def collect() -> None:
        subscribed.set()
        for event in stream:
            seen.append(event)
            if event.kind == "job.succeeded":
                return

    reader = threading.Thread(target=collect)
    reader.start()
    subscribed.wait()
    time.sleep(0.3)  # the server registers the subscription
    workers.append(start_worker(server.address, "--queue", "events"))
    job_id = client.enqueue("echo", "hi", queue="events")
    reader.join(15)
    stream.cancel()
    kinds = [e.kind for e in seen if e.job_id == job_id]
    assert kinds == ["job.enqueued", "job.claimed", "job.succeeded"]
