"""What the gRPC listener sends stays within its message limit, on HTTP/2 and on the native
framing (which carries the same handlers), and what it holds for a worker stream stays bounded.

A worker with credits for ten jobs whose payloads add up to more than `max_message_bytes` was
sent them in one `assignments` message: grpc ended the stream (RESOURCE_EXHAUSTED), the leases
were released counting an attempt each, the worker reconnected and met the same, until the
jobs failed. `ListJobs` failed the same way on a page of such jobs. The listeners here have a
1 MiB limit (8 MiB by default) so that the jobs stay small.

A worker stream that does not read what it is sent had its replies queued without bound while
the server went on reading its messages (300,000 empty messages on gRPC: +220 MB; 1.5M frames
on the native framing: +1.2 GB).
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
from shoal.protocols.grpc import _stream
from shoal.protocols.grpc.gen.shoal.v1 import (
    jobs_pb2,
    jobs_pb2_grpc,
    native_pb2,
    workers_pb2,
    workers_pb2_grpc,
)
from shoal.protocols.grpc.listener import GrpcListener, GrpcOptions
from shoal.protocols.grpc.native.frames import PREFACE, FrameDecoder, Kind, encode
from shoal.sdk import App, Worker
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
    for request in _hello_and_credits(count):
        writer.write(encode(Kind.MESSAGE, 1, request.SerializeToString()))
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


async def test_a_fetch_of_jobs_larger_than_a_message_takes_what_fits_and_gives_back_the_rest() -> (
    None
):
    # the pull path's Fetch put every claimed job in one response: RESOURCE_EXHAUSTED, and
    # all ten stayed leased until their leases expired, each then counting an attempt
    async with _listening() as (service, listener, _):
        ids = await _enqueue(service, *[PAYLOAD] * 10)
        fetched: list[str] = []
        async with grpc.aio.insecure_channel(listener.address, options=_RECEIVE) as channel:
            stub = workers_pb2_grpc.WorkerServiceStub(channel)
            while len(fetched) < len(ids):
                request = workers_pb2.FetchRequest(worker_id="puller", queues=["q"], limit=10)
                response = await stub.Fetch(request, timeout=10)
                assert response.ByteSize() <= LIMIT and response.assignments
                fetched += [item.job.id for item in response.assignments]
        assert sorted(fetched) == sorted(ids)
        for job_id in ids:  # each taken once, its attempt counted once
            job = await service.get("default", job_id)
            assert (job.state, job.attempt) == (JobState.RUNNING, 1)


async def test_a_fetch_fails_a_job_too_large_for_any_message_and_takes_the_next() -> None:
    # the first job too large alone still went into the response: RESOURCE_EXHAUSTED, and the
    # job stayed leased until its lease expired
    async with _listening(limit=4096) as (service, listener, _):
        big, small = await _enqueue(service, 5000, 10)
        async with grpc.aio.insecure_channel(listener.address, options=_RECEIVE) as channel:
            stub = workers_pb2_grpc.WorkerServiceStub(channel)
            request = workers_pb2.FetchRequest(worker_id="puller", queues=["q"], limit=2)
            response = await stub.Fetch(request, timeout=10)
        assert [item.job.id for item in response.assignments] == [small]
        failed = await service.get("default", big)
        assert failed.state is JobState.FAILED
        assert failed.error is not None and failed.error.type == "MessageTooLarge"


# --- a worker that does not read its replies ------------------------------------------------

#: The outbox bound in these tests (a few thousand messages in production).
_BOUND = 100
#: Empty messages, each answered with an error, sent by a worker that reads none of them.
_FLOOD = 2000
#: An HTTP/2 client that takes little ahead of its reading: without it grpc buffers thousands
#: of the replies for the test's client, and the flood would need to be far longer.
_NARROW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16384)]


async def _session(listener: GrpcListener) -> _stream.Session:
    async with asyncio.timeout(5):
        while not listener.workers.sessions:
            await asyncio.sleep(0.01)
    [session] = listener.workers.sessions.values()
    return session


async def _queued_once_settled(session: _stream.Session) -> int:
    """What the session holds for its worker once the flood reached the bound, then a moment
    later (the reader takes the flood's messages in far less).
    """
    async with asyncio.timeout(10):
        while session._outbox.qsize() < _BOUND:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    return session._outbox.qsize()


async def _flooded_over_grpc(listener: GrpcListener) -> int:
    async with grpc.aio.insecure_channel(listener.address, options=_NARROW) as channel:
        call = workers_pb2_grpc.WorkerServiceStub(channel).Connect()
        await call.write(_hello_and_credits(1)[0])

        async def flood() -> None:
            for _ in range(_FLOOD):
                await call.write(workers_pb2.WorkerMessage())

        flooding = asyncio.create_task(flood())  # held back once the server stops reading
        try:
            return await _queued_once_settled(await _session(listener))
        finally:
            flooding.cancel()
            call.cancel()
            await asyncio.gather(flooding, return_exceptions=True)


async def _flooded_over_native(listener: GrpcListener, port: int) -> int:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    header = native_pb2.CallHeader(method=_CONNECT, window=1).SerializeToString()
    hello = _hello_and_credits(1)[0].SerializeToString()
    empty = encode(Kind.MESSAGE, 1, b"")
    writer.write(PREFACE + encode(Kind.CALL, 1, header) + encode(Kind.MESSAGE, 1, hello))
    writer.write(empty * _FLOOD)
    try:
        return await _queued_once_settled(await _session(listener))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_a_worker_that_reads_none_of_its_replies_is_held_back(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_stream, "OUTBOX_MESSAGES", _BOUND, raising=False)
    async with _listening() as (_, listener, port):
        if transport == "grpc":
            queued = await _flooded_over_grpc(listener)
        else:
            queued = await _flooded_over_native(listener, port)
        # the reader stopped taking the worker's messages once the outbox was full
        assert queued <= _BOUND + 1


@pytest.mark.parametrize("scheme", ["grpc", "shoal"])
async def test_a_worker_that_reads_runs_its_jobs_through_the_smallest_outbox(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every message fills the outbox: the reader and the dispatcher wait for each to leave
    monkeypatch.setattr(_stream, "OUTBOX_MESSAGES", 1, raising=False)
    monkeypatch.setattr(_stream, "OUTBOX_BYTES", 1, raising=False)
    async with _listening() as (_, listener, port):
        address = listener.address if scheme == "grpc" else f"127.0.0.1:{port}"
        app = App(f"{scheme}://{address}")

        @app.task(name="double", queue="q")
        async def double(value: int) -> int:
            return 2 * value

        try:
            handles = [await double.aenqueue(i) for i in range(200)]
            worker = Worker(app, concurrency=8, pool="asyncio", prefetch=8)
            await worker.run_until_idle(timeout=20)
            assert [await handle.aresult(timeout=5) for handle in handles] == [
                2 * i for i in range(200)
            ]
        finally:
            await app.close()
