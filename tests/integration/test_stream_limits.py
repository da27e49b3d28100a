"""What the gRPC listener sends stays within its message limit, on HTTP/2 and on the native
framing (which carries the same handlers).

A worker with credits for ten jobs whose payloads add up to more than `max_message_bytes` was
sent them in one `assignments` message: grpc ended the stream (RESOURCE_EXHAUSTED), the leases
were released counting an attempt each, the worker reconnected and met the same, until the
jobs failed. `ListJobs` failed the same way on a page of such jobs. The listeners here have a
1 MiB limit (8 MiB by default) so that the jobs stay small.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc.aio
import pytest

from shoal.core.model import JobState
from shoal.core.service import QueueService
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import (
    jobs_pb2,
    jobs_pb2_grpc,
    native_pb2,
    workers_pb2,
    workers_pb2_grpc,
)
from shoal.protocols.grpc.listener import GrpcListener, GrpcOptions
from shoal.protocols.grpc.native.frames import PREFACE, FrameDecoder, Kind, encode
from shoal.stores.memory import MemoryStore

#: The listeners' message limit in these tests.
LIMIT = 1 << 20
#: Ten such payloads take twice the limit together; one fits easily.
PAYLOAD = 200 * 1024
#: What the test clients accept: more than the server may send, so that they see what it does.
_RECEIVE = [("grpc.max_receive_message_length", 64 << 20)]
_CONNECT = "/shoal.v1.WorkerService/Connect"


@contextlib.asynccontextmanager
async def _listening(limit: int = LIMIT) -> AsyncIterator[tuple[QueueService, GrpcListener, int]]:
    """A listener on gRPC and native framing with `limit`, and the native port."""
    store = MemoryStore()
    await store.open()
    service = QueueService(store)
    listener = GrpcListener(service, GrpcOptions(max_message_bytes=limit))
    await listener.start("127.0.0.1", 0)
    address = await listener.start_native("127.0.0.1", 0)
    try:
        yield service, listener, int(address.rsplit(":", 1)[1])
    finally:
        await listener.stop(0.5)
        await store.close()


async def _enqueue(service: QueueService, *sizes: int) -> list[str]:
    """Jobs of queue `q` with payloads of these sizes; their ids."""
    requests = [EnqueueRequest("t", payload=b"x" * size, queue="q") for size in sizes]
    return [item.job.id for item in await service.enqueue_many(requests)]


def _hello_and_credits(credits: int) -> list[workers_pb2.WorkerMessage]:
    return [
        workers_pb2.WorkerMessage(hello=workers_pb2.Hello(queues=["q"], concurrency=credits)),
        workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=credits)),
    ]


async def _assigned_over_grpc(address: str, count: int) -> list[tuple[int, list[str]]]:
    """Each assignments message a worker stream with `count` credits receives until `count`
    jobs came: its size and the jobs' ids.
    """
    got: list[tuple[int, list[str]]] = []
    async with grpc.aio.insecure_channel(address, options=_RECEIVE) as channel:
        call = workers_pb2_grpc.WorkerServiceStub(channel).Connect()
        for message in _hello_and_credits(count):
            await call.write(message)
        async with asyncio.timeout(10):
            while sum(len(ids) for _, ids in got) < count:
                message = await call.read()
                if message.WhichOneof("kind") == "assignments":
                    ids = [a.job.id for a in message.assignments.assignments]
                    got.append((message.ByteSize(), ids))
        call.cancel()
    return got


async def _assigned_over_native(port: int, count: int) -> list[tuple[int, list[str]]]:
    """As `_assigned_over_grpc`, on the native framing: each frame's body size."""
    got: list[tuple[int, list[str]]] = []
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = native_pb2.CallHeader(method=_CONNECT, window=100).SerializeToString()
    writer.write(PREFACE + encode(Kind.CALL, 1, header))
    for message in _hello_and_credits(count):
        writer.write(encode(Kind.MESSAGE, 1, message.SerializeToString()))
    decoder = FrameDecoder(64 << 20)
    try:
        async with asyncio.timeout(10):
            while sum(len(ids) for _, ids in got) < count:
                data = await reader.read(1 << 20)
                assert data, "the server hung up"
                for frame in decoder.feed(data):
                    assert frame.kind == Kind.MESSAGE, native_pb2.CallStatus.FromString(frame.body)
                    message = workers_pb2.ServerMessage.FromString(frame.body)
                    if message.WhichOneof("kind") == "assignments":
                        ids = [a.job.id for a in message.assignments.assignments]
                        got.append((len(frame.body), ids))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return got


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_jobs_larger_together_than_a_message_are_assigned_in_several(
    transport: str,
) -> None:
    async with _listening() as (service, listener, port):
        ids = await _enqueue(service, *[PAYLOAD] * 10)
        if transport == "grpc":
            got = await _assigned_over_grpc(listener.address, 10)
        else:
            got = await _assigned_over_native(port, 10)
        assert len(got) > 1
        assert all(size <= LIMIT for size, _ in got), [size for size, _ in got]
        assert sorted(job_id for _, part in got for job_id in part) == sorted(ids)
        # each delivered on its first attempt, still leased to the stream
        for job_id in ids:
            job = await service.get("default", job_id)
            assert (job.state, job.attempt) == (JobState.RUNNING, 1)


async def test_a_job_too_large_for_any_message_fails_and_the_stream_goes_on() -> None:
    # Only a server whose limit is barely above limits.max_payload_bytes meets this (the
    # job's other fields and its last error travel with its payload)
    async with _listening(limit=4096) as (service, listener, _):
        big, small = await _enqueue(service, 5000, 10)
        got = await _assigned_over_grpc(listener.address, 1)
        assert [ids for _, ids in got] == [[small]]
        failed = await service.get("default", big)
        assert failed.state is JobState.FAILED
        assert failed.error is not None and not failed.error.retryable
        assert failed.error.type == "MessageTooLarge"
        assert "4096" in failed.error.message


async def test_a_page_of_jobs_larger_than_a_message_ends_early_and_goes_on() -> None:
    async with _listening() as (service, listener, _):
        ids = await _enqueue(service, *[PAYLOAD] * 10)
        listed: list[str] = []
        pages = 0
        async with grpc.aio.insecure_channel(listener.address, options=_RECEIVE) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            cursor = ""
            while True:
                request = jobs_pb2.ListJobsRequest(queue="q", limit=50, cursor=cursor)
                page = await stub.ListJobs(request, timeout=10)
                assert page.ByteSize() <= LIMIT
                pages += 1
                listed += [job.id for job in page.jobs]
                if not (cursor := page.next_cursor):
                    break
        assert pages > 1
        assert listed == sorted(ids, reverse=True)  # newest first, none skipped or repeated
