"""The native framing against a real server: the gRPC port's services, statuses and metadata,
over plain frames (docs/native-protocol.md), through the SDK's `NativeChannel`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from shoal.protocols.grpc.native.frames import PREFACE, FrameDecoder, Kind, encode
from shoal.sdk._native import NativeChannel
from tests.integration._grpc_server import Client, ServerProcess, start_server

Code = grpc.StatusCode


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Both ports, small limits: 64 KiB messages, 1000-byte payloads."""
    tmp_path: Path = tmp_path_factory.mktemp("native")
    process = start_server(
        tmp_path,
        *("--native-listen", "127.0.0.1:0"),
        *("--set", "server.max_message_bytes=65536", "--set", "limits.max_payload_bytes=1000"),
    )
    yield process
    assert process.stop() == 0


@pytest.fixture
async def channel(server: ServerProcess) -> AsyncIterator[NativeChannel]:
    host, _, port = server.ready["native"].rpartition(":")
    native = NativeChannel(host, int(port))
    await asyncio.wait_for(native.channel_ready(), 10)
    yield native
    await native.close()


def _code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("shoal-error-code")  # type: ignore[arg-type]


async def test_a_job_enqueued_natively_is_the_one_grpc_reads(
    channel: NativeChannel, server: ServerProcess
) -> None:
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    made = await jobs.Enqueue(jobs_pb2.EnqueueRequest(namespace="n1", task="t", payload=b"[1]"))
    assert made.created and made.job.state
    with server.channel() as grpc_channel:
        seen = Client(grpc_channel).jobs.GetJob(
            jobs_pb2.GetJobRequest(namespace="n1", id=made.job.id)
        )
    assert seen.id == made.job.id and seen.payload == b"[1]"
    again = await jobs.GetJob(jobs_pb2.GetJobRequest(namespace="n1", id=made.job.id))
    assert again == seen


async def test_errors_keep_their_status_and_shoal_code(channel: NativeChannel) -> None:
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await jobs.GetJob(jobs_pb2.GetJobRequest(id="no-such-job"))
    assert missing.value.code() is Code.NOT_FOUND and _code(missing.value) == "not_found"
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t", queue="a b"))
    assert bad.value.code() is Code.INVALID_ARGUMENT
    metadata = dict(bad.value.trailing_metadata() or ())  # type: ignore[arg-type]
    assert metadata == {"shoal-error-code": "invalid_argument", "shoal-error-field": "queue"}


async def test_a_malformed_message_is_invalid_and_the_connection_goes_on(
    channel: NativeChannel,
) -> None:
    raw = channel.unary_unary("/shoal.v1.JobService/GetJob")  # bytes in, bytes out
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await raw(b"\xff\xff\xff")
    assert malformed.value.code() is Code.INVALID_ARGUMENT
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    assert (await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t"))).created


async def test_an_unknown_method_is_unimplemented(channel: NativeChannel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await channel.unary_unary("/shoal.v1.JobService/NoSuchMethod")(b"")
    assert unknown.value.code() is Code.UNIMPLEMENTED


async def test_a_message_over_the_limit_is_resource_exhausted_alone(channel: NativeChannel) -> None:
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    with pytest.raises(grpc.aio.AioRpcError) as large:
        await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t", payload=b"x" * 70_000))
    assert large.value.code() is Code.RESOURCE_EXHAUSTED
    # only that call failed: the same connection serves the next ones
    assert (await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t"))).created
    with pytest.raises(grpc.aio.AioRpcError) as payload:  # under the frame limit: the service's
        await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t", payload=b"x" * 2000))
    assert (
        payload.value.code() is Code.INVALID_ARGUMENT and _code(payload.value) == "invalid_argument"
    )


async def test_a_deadline_ends_the_call_on_the_client(channel: NativeChannel) -> None:
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    made = await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="never-run"))
    request = jobs_pb2.WaitForJobRequest(id=made.job.id, timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await jobs.WaitForJob(request, timeout=0.2)
    assert late.value.code() is Code.DEADLINE_EXCEEDED
    assert (await jobs.GetJob(jobs_pb2.GetJobRequest(id=made.job.id))).id == made.job.id


async def test_a_response_stream_delivers_and_can_be_cancelled(channel: NativeChannel) -> None:
    events = events_pb2_grpc.EventServiceStub(channel)  # type: ignore[no-untyped-call]
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    call = events.Subscribe(events_pb2.SubscribeRequest(namespace="ev", kinds=["job.enqueued"]))
    await asyncio.sleep(0.2)  # the subscription is taken before the enqueue
    made = await jobs.Enqueue(jobs_pb2.EnqueueRequest(namespace="ev", task="t"))
    event = await asyncio.wait_for(call.read(), 10)
    assert event.kind == "job.enqueued" and event.job_id == made.job.id
    assert call.cancel() and call.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await call.read()


async def test_a_worker_stream_runs_a_job_to_its_end(channel: NativeChannel) -> None:
    jobs = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    workers = workers_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
    made = await jobs.Enqueue(jobs_pb2.EnqueueRequest(namespace="ws", queue="q", task="t"))
    stream = workers.Connect()
    hello = workers_pb2.Hello(namespace="ws", queues=["q"], concurrency=1, language="test")
    await stream.write(workers_pb2.WorkerMessage(hello=hello))
    assert (await stream.read()).WhichOneof("kind") == "welcome"
    await stream.write(workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=1)))
    assigned = (await asyncio.wait_for(stream.read(), 10)).assignments.assignments[0]
    assert assigned.job.id == made.job.id
    done = workers_pb2.Completion(job_id=assigned.job.id, token=assigned.token, result=b"1")
    await stream.write(workers_pb2.WorkerMessage(outcomes=workers_pb2.Outcomes(completed=[done])))
    ack = (await asyncio.wait_for(stream.read(), 10)).acks.acks[0]
    assert ack.job_id == made.job.id
    await stream.done_writing()
    assert await asyncio.wait_for(stream.read(), 10) is grpc.aio.EOF  # type: ignore[attr-defined]
    assert await stream.code() is Code.OK
    finished = await jobs.GetJob(jobs_pb2.GetJobRequest(namespace="ws", id=made.job.id))
    assert finished.result == b"1"


def test_a_peer_that_does_not_speak_the_framing_is_hung_up_on(server: ServerProcess) -> None:
    host, _, port = server.ready["native"].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        assert sock.recv(len(PREFACE)) == PREFACE  # the server speaks first
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100) == b""  # closed


def test_a_raw_client_written_from_the_document_gets_its_answer(server: ServerProcess) -> None:
    """What another language's client does: preface, CALL, MESSAGE; then MESSAGE and STATUS."""
    from shoal.protocols.grpc.gen.shoal.v1 import native_pb2

    host, _, port = server.ready["native"].rpartition(":")
    header = native_pb2.CallHeader(method="/shoal.v1.JobService/Enqueue").SerializeToString()
    request = jobs_pb2.EnqueueRequest(namespace="raw", task="t").SerializeToString()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(PREFACE + encode(Kind.CALL, 5, header) + encode(Kind.MESSAGE, 5, request))
        decoder, got = FrameDecoder(max_body=1 << 20), []
        while len(got) < 2:
            got += decoder.feed(sock.recv(65536))
    (kind, call, body), (end_kind, end_call, end_body) = got
    assert (kind, call, end_kind, end_call) == (Kind.MESSAGE, 5, Kind.STATUS, 5)
    assert jobs_pb2.EnqueueResponse.FromString(body).job.namespace == "raw"
    assert end_body == b""  # an OK status is an empty CallStatus


async def test_calls_fail_unavailable_when_the_server_is_gone(tmp_path: Path) -> None:
    grace = ("--set", "server.grace_period=0.5")
    process = start_server(tmp_path, "--native-listen", "127.0.0.1:0", *grace)
    host, _, port = process.ready["native"].rpartition(":")
    native = NativeChannel(host, int(port))
    try:
        jobs = jobs_pb2_grpc.JobServiceStub(native)  # type: ignore[no-untyped-call]
        made = await jobs.Enqueue(jobs_pb2.EnqueueRequest(task="t"))
        waiting = jobs.WaitForJob(jobs_pb2.WaitForJobRequest(id=made.job.id, timeout=30))
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(process.stop) == 0
        # the long poll outlived the grace period: cancelled, and the connection closed
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await asyncio.wait_for(waiting, 30)
        assert gone.value.code() is Code.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await jobs.GetJob(jobs_pb2.GetJobRequest(id=made.job.id))
        assert refused.value.code() is Code.UNAVAILABLE
    finally:
        await native.close()
