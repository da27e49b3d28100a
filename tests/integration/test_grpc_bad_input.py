"""Bad input gets the mapped status (and shoal error code), changes nothing, and neither the
stream nor the server goes down.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import (
    jobs_pb2,
    model_pb2,
    queues_pb2,
    workers_pb2,
)
from tests.integration._grpc_server import Client, ServerProcess, error_code, start_server

Code = grpc.StatusCode


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with small limits: 64 KiB messages, 1000-byte payloads."""
    tmp_path: Path = tmp_path_factory.mktemp("bad-input")
    process = start_server(
        tmp_path,
        "--set",
        "server.max_message_bytes=65536",
        "--set",
        "limits.max_payload_bytes=1000",
    )
    yield process
    assert process.stop() == 0


@pytest.fixture
def client(small_server: ServerProcess) -> Iterator[Client]:
    with small_server.channel() as channel:
        yield Client(channel)


def _count_jobs(client: Client) -> int:
    return len(client.jobs.ListJobs(jobs_pb2.ListJobsRequest(limit=1000)).jobs)


BAD_CALLS: list[tuple[str, Callable[[Client], Any], Code, str, str | None]] = [
    (
        "bad queue name",
        lambda c: c.jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t", queue="a b")),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "queue",
    ),
    (
        "payload over the limit",
        lambda c: c.jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t", payload=b"x" * 2000)),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "payload",
    ),
    (
        "unknown backoff",
        lambda c: c.jobs.Enqueue(
            jobs_pb2.EnqueueRequest(task="t", backoff=model_pb2.Backoff(kind="linear"))
        ),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "backoff.kind",
    ),
    (
        "one bad job of a batch",
        lambda c: c.jobs.EnqueueMany(
            jobs_pb2.EnqueueManyRequest(
                jobs=[jobs_pb2.EnqueueRequest(task="ok"), jobs_pb2.EnqueueRequest(task="")]
            )
        ),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "jobs.1.task",  # which job of the batch
    ),
    (
        "unknown job",
        lambda c: c.jobs.GetJob(jobs_pb2.GetJobRequest(id="nope")),
        Code.NOT_FOUND,
        "not_found",
        None,
    ),
    (
        "job of another namespace",
        lambda c: c.jobs.CancelJob(jobs_pb2.CancelJobRequest(namespace="other", id="nope")),
        Code.NOT_FOUND,
        "not_found",
        None,
    ),
    (
        "unknown state number",
        lambda c: c.jobs.ListJobs(jobs_pb2.ListJobsRequest(state=99)),  # type: ignore[arg-type]
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "state",
    ),
    (
        "negative wait",
        lambda c: c.jobs.WaitForJob(jobs_pb2.WaitForJobRequest(id="x", timeout=-1)),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "timeout",
    ),
    (
        "empty queue name",
        lambda c: c.queues.PauseQueue(queues_pb2.PauseQueueRequest(queue="")),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "queue",
    ),
    (
        "unknown worker",
        lambda c: c.workers.KickWorker(workers_pb2.KickWorkerRequest(worker_id="w-nope")),
        Code.NOT_FOUND,
        "not_found",
        None,
    ),
    (
        "fetch without queues",
        lambda c: c.workers.Fetch(workers_pb2.FetchRequest(worker_id="pull-1")),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "queues",
    ),
    (
        "outcome for a job not held",
        lambda c: c.workers.Complete(workers_pb2.CompleteRequest(job_id="j", token="t")),
        Code.ABORTED,
        "lease_lost",
        None,
    ),
    (
        "outcome without a token",
        lambda c: c.workers.Fail(workers_pb2.FailRequest(job_id="j")),
        Code.INVALID_ARGUMENT,
        "invalid_argument",
        "token",
    ),
]


@pytest.mark.parametrize(
    ("call", "status", "code", "field"), [b[1:] for b in BAD_CALLS], ids=[b[0] for b in BAD_CALLS]
)
def test_bad_unary_call_is_mapped_and_changes_nothing(
    client: Client, call: Callable[[Client], Any], status: Code, code: str, field: str | None
) -> None:
    before = _count_jobs(client)
    with pytest.raises(grpc.RpcError) as raised:
        call(client)
    assert raised.value.code() is status, raised.value.details()
    assert error_code(raised.value) == code
    metadata = dict(raised.value.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert metadata.get("shoal-error-field") == field
    assert _count_jobs(client) == before


def test_a_retry_of_a_waiting_job_is_a_conflict(client: Client) -> None:
    job_id = client.enqueue("t", queue="conflicts")
    with pytest.raises(grpc.RpcError) as raised:
        client.jobs.RetryJob(jobs_pb2.RetryJobRequest(id=job_id))
    assert raised.value.code() is Code.FAILED_PRECONDITION
    assert error_code(raised.value) == "conflict"
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert job.state == model_pb2.JOB_STATE_QUEUED and job.attempt == 0


def test_malformed_message_is_invalid_argument(client: Client) -> None:
    raw = client.channel.unary_unary("/shoal.v1.JobService/Enqueue")
    before = _count_jobs(client)
    with pytest.raises(grpc.RpcError) as raised:
        raw(b"\xff\xff\xff\xff\x0f", timeout=5)
    assert raised.value.code() is Code.INVALID_ARGUMENT
    assert error_code(raised.value) == "invalid_argument"
    assert _count_jobs(client) == before


def test_oversized_message_is_refused(client: Client) -> None:
    before = _count_jobs(client)
    with pytest.raises(grpc.RpcError) as raised:
        client.jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t", payload=b"x" * 100_000))
    assert raised.value.code() is Code.RESOURCE_EXHAUSTED
    assert _count_jobs(client) == before
    client.enqueue("t", queue="after-oversize")  # the server still serves
    assert _count_jobs(client) == before + 1


class RawStream:
    """A worker stream whose requests are raw bytes (so they may be malformed)."""

    def __init__(self, client: Client) -> None:
        self._requests: queue.Queue[bytes | None] = queue.Queue()
        connect = client.channel.stream_stream(
            "/shoal.v1.WorkerService/Connect",
            response_deserializer=workers_pb2.ServerMessage.FromString,
        )
        self.responses = connect(iter(self._requests.get, None), timeout=30)

    def send(self, data: bytes | workers_pb2.WorkerMessage) -> None:
        self._requests.put(data if isinstance(data, bytes) else data.SerializeToString())

    def receive(self) -> workers_pb2.ServerMessage:
        return next(self.responses)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._requests.put(None)


def _hello(queue_name: str) -> workers_pb2.WorkerMessage:
    return workers_pb2.WorkerMessage(hello=workers_pb2.Hello(queues=[queue_name], language="t"))


def test_stream_must_open_with_a_hello(client: Client) -> None:
    stream = RawStream(client)
    stream.send(workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=1)))
    with pytest.raises(grpc.RpcError) as raised:
        stream.receive()
    assert raised.value.code() is Code.INVALID_ARGUMENT
    stream = RawStream(client)
    stream.send(workers_pb2.WorkerMessage(hello=workers_pb2.Hello()))  # names no queue
    with pytest.raises(grpc.RpcError) as raised:
        stream.receive()
    assert raised.value.code() is Code.INVALID_ARGUMENT
    assert error_code(raised.value) == "invalid_argument"
    stream = RawStream(client)
    stream.send(_hello("a queue"))  # white space: not a queue name
    with pytest.raises(grpc.RpcError) as raised:
        stream.receive()
    assert raised.value.code() is Code.INVALID_ARGUMENT
    metadata = dict(raised.value.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert metadata["shoal-error-field"] == "queues"
    for lookahead in (-1.0, float("nan")):
        stream = RawStream(client)
        hello = workers_pb2.Hello(queues=["q"], language="t", lookahead=lookahead)
        stream.send(workers_pb2.WorkerMessage(hello=hello))
        with pytest.raises(grpc.RpcError) as raised:
            stream.receive()
        metadata = dict(raised.value.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert metadata["shoal-error-field"] == "lookahead"
    for text_field in ("host", "language"):  # NUL: stored by memory, refused by PostgreSQL
        stream = RawStream(client)
        hello = workers_pb2.Hello(queues=["q"], **{text_field: "a\x00b"})
        stream.send(workers_pb2.WorkerMessage(hello=hello))
        with pytest.raises(grpc.RpcError) as raised:
            stream.receive()
        metadata = dict(raised.value.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert metadata["shoal-error-field"] == text_field
    lease = model_pb2.Lease(job_id="j", token="t")
    for resume, field in (
        ({"held": [lease]}, "held"),  # leases of no lost stream
        ({"previous_session_secret": "s", "held": [model_pb2.Lease(job_id="j")]}, "token"),
    ):
        workers = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
        stream = RawStream(client)
        stream.send(workers_pb2.WorkerMessage(hello=workers_pb2.Hello(queues=["q"], **resume)))
        with pytest.raises(grpc.RpcError) as raised:
            stream.receive()
        metadata = dict(raised.value.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert metadata["shoal-error-field"] == field
        assert client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers == workers


def test_stream_survives_bad_messages_and_nothing_changes(client: Client) -> None:
    job_id = client.enqueue("t", queue="stream-bad")
    stream = RawStream(client)
    stream.send(_hello("stream-bad"))
    assert stream.receive().WhichOneof("kind") == "welcome"

    def error_for(message: bytes | workers_pb2.WorkerMessage) -> model_pb2.Error:
        stream.send(message)
        reply = stream.receive()
        assert reply.WhichOneof("kind") == "error", reply
        return reply.error

    garbled = error_for(b"\xff\xff\xff\xff\x0f")
    assert (garbled.status, garbled.code) == (Code.INVALID_ARGUMENT.value[0], "invalid_argument")
    negative = error_for(workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=-1)))
    assert (negative.code, negative.field) == ("invalid_argument", "credits")
    outcome = workers_pb2.Outcomes(completed=[workers_pb2.Completion(job_id=job_id, token="x")])
    not_held = error_for(workers_pb2.WorkerMessage(outcomes=outcome))
    assert (not_held.status, not_held.code) == (Code.ABORTED.value[0], "lease_lost")
    assert not_held.job_id == job_id
    second_hello = error_for(_hello("stream-bad"))
    assert (second_hello.code, second_hello.field) == ("invalid_argument", "hello")
    empty = error_for(workers_pb2.WorkerMessage())
    assert empty.code == "invalid_argument"
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert job.state == model_pb2.JOB_STATE_QUEUED and job.attempt == 0

    # the stream still works: a credit brings the job
    stream.send(workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=1)))
    reply = stream.receive()
    assert reply.WhichOneof("kind") == "assignments"
    assert [a.job.id for a in reply.assignments.assignments] == [job_id]
    stream.close()
    assert client.wait(job_id, timeout=5).state == model_pb2.JOB_STATE_QUEUED  # released


def test_a_reconnecting_worker_finds_its_old_leases_fenced(client: Client) -> None:
    job_id = client.enqueue("t", queue="fenced")
    first = RawStream(client)
    first.send(_hello("fenced"))
    first.send(workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=1)))
    assert first.receive().WhichOneof("kind") == "welcome"
    (assignment,) = first.receive().assignments.assignments
    first.close()  # the connection ends: the lease ends at once
    for _ in first.responses:  # the server ends the stream once it has let the lease go
        pass
    old = workers_pb2.Outcomes(
        completed=[workers_pb2.Completion(job_id=job_id, token=assignment.token, result=b"1")]
    )
    second = RawStream(client)
    second.send(_hello("elsewhere"))
    assert second.receive().WhichOneof("kind") == "welcome"
    second.send(workers_pb2.WorkerMessage(outcomes=old))
    refused = second.receive()
    assert (refused.error.code, refused.error.job_id) == ("lease_lost", job_id)
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))
    assert job.state == model_pb2.JOB_STATE_QUEUED and not job.HasField("result")
    second.close()


def test_a_resumed_stream_keeps_the_leases_it_names_and_gives_back_the_rest(
    client: Client,
) -> None:
    kept_id = client.enqueue("t", queue="resumed", priority=1)
    dropped_id = client.enqueue("t", queue="resumed")
    first = RawStream(client)
    first.send(_hello("resumed"))
    first.send(workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=2)))
    welcome = first.receive().welcome
    assigned = {a.job.id: a.token for a in first.receive().assignments.assignments}
    assert set(assigned) == {kept_id, dropped_id}

    def hello(**resume: Any) -> workers_pb2.WorkerMessage:
        return workers_pb2.WorkerMessage(
            hello=workers_pb2.Hello(queues=["elsewhere"], language="t", **resume)
        )

    # the worker id is shown to others: naming it proves nothing, and nothing moves
    intruder = RawStream(client)
    intruder.send(hello(previous_session_secret=welcome.worker_id))
    assert intruder.receive().WhichOneof("kind") == "welcome"
    job = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=dropped_id))
    assert job.state == model_pb2.JOB_STATE_RUNNING and job.worker_id == welcome.worker_id
    intruder.close()
    # the worker lost the stream (the server did not notice yet) and took only the first job
    second = RawStream(client)
    held = [model_pb2.Lease(job_id=kept_id, token=assigned[kept_id])]
    second.send(hello(previous_session_secret=welcome.session_secret, held=held))
    worker_id = second.receive().welcome.worker_id
    dropped = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=dropped_id))
    assert dropped.state == model_pb2.JOB_STATE_QUEUED and dropped.attempt == 0  # at once
    assert first.receive().WhichOneof("kind") == "drain"  # the lost stream takes no more
    first.close()
    for _ in first.responses:  # the old stream's end releases nothing the new one holds
        pass
    kept = client.jobs.GetJob(jobs_pb2.GetJobRequest(id=kept_id))
    assert kept.state == model_pb2.JOB_STATE_RUNNING and kept.worker_id == worker_id
    listed = client.workers.ListWorkers(workers_pb2.ListWorkersRequest()).workers
    assert welcome.worker_id not in {worker.id for worker in listed}
    client.jobs.CancelJob(jobs_pb2.CancelJobRequest(id=kept_id))  # pushed to its new stream
    assert list(second.receive().cancel.job_ids) == [kept_id]
    done = workers_pb2.Outcomes(
        completed=[workers_pb2.Completion(job_id=kept_id, token=assigned[kept_id])]
    )
    second.send(workers_pb2.WorkerMessage(outcomes=done))
    assert second.receive().WhichOneof("kind") == "acks"
    assert client.wait(kept_id, timeout=5).state == model_pb2.JOB_STATE_SUCCEEDED
    second.close()
