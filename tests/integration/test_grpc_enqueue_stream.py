"""`JobService.EnqueueStream` against a real server: results by seq after the commit, a refused
batch (invalid, malformed, not allowed) answered alone while the stream goes on, authorization
per batch with authentication on, and the SDK's fallback to unary calls on an older server.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from shoal.core.access import AccessService
from shoal.core.auth import Action, Authorizer, Principal
from shoal.core.errors import InvalidArgument, PermissionDenied, ShoalError, Unavailable
from shoal.core.retry import RetryPolicy
from shoal.core.service import QueueService
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc._auth import Authenticating, Callers
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, jobs_pb2_grpc, model_pb2
from shoal.protocols.grpc.jobs import JobServicer
from shoal.sdk import GrpcTransport
from shoal.sdk._credentials import Credentials
from shoal.sdk._grpc_enqueue import EnqueueStream
from shoal.stores.memory import MemoryStore
from tests.integration._auth_env import NS, OTHER_NS, Identities, role_users, start_auth_server
from tests.integration._grpc_server import ServerProcess, start_server


class Stream:
    """A raw `EnqueueStream` call: requests go in a queue, responses are read one by one."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._requests: queue.Queue[Any] = queue.Queue()
        method = channel.stream_stream(
            "/shoal.v1.JobService/EnqueueStream",
            request_serializer=lambda message: message,  # bytes, so that garbage can be sent
            response_deserializer=jobs_pb2.EnqueueStreamResponse.FromString,
        )
        self._responses = method(iter(self._requests.get, None), metadata=metadata, timeout=30)

    def send(self, *batches: tuple[int, list[jobs_pb2.EnqueueRequest]]) -> None:
        message = jobs_pb2.EnqueueStreamRequest(
            batches=[jobs_pb2.EnqueueBatch(seq=seq, jobs=jobs) for seq, jobs in batches]
        )
        self._requests.put(message.SerializeToString())

    def send_raw(self, data: bytes) -> None:
        self._requests.put(data)

    def results(self, count: int) -> dict[int, jobs_pb2.EnqueueBatchResult]:
        found: dict[int, jobs_pb2.EnqueueBatchResult] = {}
        while len(found) < count:
            for result in next(self._responses).results:
                found[result.seq] = result
        return found

    def close(self) -> None:
        self._requests.put(None)
        assert list(self._responses) == []  # the server ends the stream once all is answered


def job(task: str = "t", namespace: str = "default", **fields: Any) -> jobs_pb2.EnqueueRequest:
    return jobs_pb2.EnqueueRequest(
        namespace=namespace, queue="q", task=task, payload=b"[]", **fields
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("enqueue-stream"))
    yield process
    assert process.stop() == 0


def test_batches_are_answered_by_seq_after_they_are_stored(server: ServerProcess) -> None:
    with server.channel() as channel:
        stream = Stream(channel)
        stream.send((7, [job(), job(priority=3)]), (8, [job(task="u")]))
        stream.send((9, [job(idempotency_key="k")]))
        results = stream.results(3)
        stream.send((10, [job(idempotency_key="k")]))
        again = stream.results(1)[10]
        stream.close()
        jobs = jobs_pb2_grpc.JobServiceStub(channel)
        assert [len(results[seq].jobs) for seq in (7, 8, 9)] == [2, 1, 1]
        stored = jobs.GetJob(jobs_pb2.GetJobRequest(id=results[7].jobs[1].id))
        assert (stored.priority, stored.task, stored.state) == (3, "t", results[7].jobs[1].state)
        assert stored.created_at == results[7].jobs[1].created_at
        # the idempotency key returned the existing job, in full
        assert (again.jobs[0].created, again.jobs[0].id) == (False, results[9].jobs[0].id)
        assert again.jobs[0].job.task == "t"


def test_a_refused_batch_gets_its_error_and_the_stream_goes_on(server: ServerProcess) -> None:
    with server.channel() as channel:
        stream = Stream(channel)
        stream.send((1, [job(), job(task="bad name!")]), (2, [job(task="ok")]))
        results = stream.results(2)
        assert results[1].error.code == "invalid_argument"
        assert results[1].error.field == "jobs.1.task"
        assert not results[1].jobs
        assert results[2].jobs[0].created
        stream.send_raw(b"\xff\xff\xff")  # not a protobuf message: answered on seq 0
        assert stream.results(1)[0].error.code == "invalid_argument"
        stream.send((3, [job()]))
        assert stream.results(1)[3].jobs[0].id
        stream.close()


def _allowed(ids: Identities, name: str, namespace: str) -> bool:
    principal = Principal(name, "token", ids.grants[name])
    return Authorizer().allows(principal, Action.ENQUEUE, namespace)


@pytest.mark.slow
def test_each_batch_is_authorized_in_its_namespace(tmp_path: Path) -> None:
    ids = role_users()
    server = start_auth_server(tmp_path, ids, listeners=False)
    try:
        with server.channel() as channel:
            with pytest.raises(grpc.RpcError) as refused:
                Stream(channel).results(1)  # no credentials: the stream does not open
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            for name, token in ids.tokens.items():
                if name == "t-expired":
                    continue
                stream = Stream(channel, (("authorization", f"Bearer {token}"),))
                stream.send((1, [job(namespace=NS)]), (2, [job(namespace=OTHER_NS)]))
                stream.send((3, [job(namespace=NS), job(namespace=OTHER_NS)]))
                results = stream.results(3)
                stream.close()
                for seq, allowed in (
                    (1, _allowed(ids, name, NS)),
                    (2, _allowed(ids, name, OTHER_NS)),
                    (3, _allowed(ids, name, NS) and _allowed(ids, name, OTHER_NS)),
                ):
                    outcome = results[seq].error.code or "ok"
                    assert outcome == ("ok" if allowed else "permission_denied"), (name, seq)
        asyncio.run(_sdk_producer(server, ids.tokens["t-producer"]))
    finally:
        assert server.stop() == 0


async def _sdk_producer(server: ServerProcess, token: str) -> None:
    transport = GrpcTransport(server.address, Credentials(token=token))
    await transport.open()
    try:
        with pytest.raises(PermissionDenied):
            await transport.enqueue([EnqueueRequest(task="t", namespace=OTHER_NS)])
        stored = await transport.enqueue([EnqueueRequest(task="t", namespace=NS)])
        assert stored[0].created
    finally:
        await transport.close()


async def test_the_sdk_pipelines_callers_and_rebuilds_the_stored_jobs(
    server: ServerProcess,
) -> None:
    transport = GrpcTransport(server.address, Credentials())
    await transport.open()
    try:
        full = EnqueueRequest(
            task="t",
            payload=b'{"a": 1}',
            queue="q",
            priority=-2,
            delay=60.0,
            max_attempts=4,
            backoff=RetryPolicy(kind="fixed", base=2.0),
            timeout=9.5,
            idempotency_key="sdk-key",
            tags=("x", "y"),
        )
        calls = [transport.enqueue([EnqueueRequest(task=f"t{i}")]) for i in range(40)]
        calls.append(transport.enqueue([EnqueueRequest(task="bad name!")]))
        calls.append(transport.enqueue([full, EnqueueRequest(task="plain", payload=b"")]))
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[40], InvalidArgument)
        assert all(isinstance(result, list) for i, result in enumerate(results) if i != 40)
        stored = results[41]
        assert isinstance(stored, list)
        for item in stored:
            # what the SDK rebuilt from the compact result is the job as stored
            assert item.job == await transport.get("default", item.job.id)
        again = await transport.enqueue([full])
        assert (again[0].created, again[0].job) == (False, stored[0].job)
    finally:
        await transport.close()


async def _older_server(service: QueueService) -> tuple[grpc.aio.Server, int]:
    """A server whose JobService predates EnqueueStream (only the unary enqueue calls)."""
    access = AccessService(service.store, enabled=False)  # type: ignore[arg-type]
    servicer = JobServicer(Callers(service, access))
    handlers = {
        "EnqueueMany": grpc.unary_unary_rpc_method_handler(
            servicer.EnqueueMany,
            request_deserializer=jobs_pb2.EnqueueManyRequest.FromString,
            response_serializer=jobs_pb2.EnqueueManyResponse.SerializeToString,
        ),
    }
    server = grpc.aio.server(interceptors=[Authenticating(access)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("shoal.v1.JobService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def test_the_sdk_falls_back_to_unary_calls_on_an_older_server() -> None:
    store = MemoryStore()
    await store.open()
    service = QueueService(store)
    server, port = await _older_server(service)
    transport = GrpcTransport(f"127.0.0.1:{port}", Credentials())
    await transport.open()
    try:
        first = await transport.enqueue([EnqueueRequest(task="t")])
        second = await asyncio.gather(
            *(transport.enqueue([EnqueueRequest(task=f"t{i}")]) for i in range(5))
        )
        with pytest.raises(InvalidArgument):
            await transport.enqueue([EnqueueRequest(task="bad name!")])
        assert transport._enqueues.unary  # it asks with EnqueueMany since the first try
        ids = [first[0].job.id, *(items[0].job.id for items in second)]
        for job_id in ids:
            assert (await service.get("default", job_id)).id == job_id
    finally:
        await transport.close()
        await server.stop(None)


async def test_a_stopping_server_ends_the_open_streams_without_waiting_its_grace(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, "--set", "server.grace_period=30")
    transport = GrpcTransport(server.address, Credentials())
    await transport.open()
    try:
        await transport.enqueue([EnqueueRequest(task="t")])  # the stream is open now
        started = time.monotonic()
        assert await asyncio.to_thread(server.stop) == 0
        assert time.monotonic() - started < 10  # not the 30 s grace period
        with pytest.raises(Unavailable):
            await transport.enqueue([EnqueueRequest(task="t")])
    finally:
        await transport.close()


async def test_an_answer_the_sdk_cannot_read_fails_its_batch_alone() -> None:
    async def answer(requests: Any, context: Any) -> Any:
        async for request in requests:
            for batch in request.batches:
                state = 99 if batch.seq == 1 else 2  # an unknown state number, then queued
                job = jobs_pb2.Enqueued(id=f"j{batch.seq}", created=True, state=state)
                yield jobs_pb2.EnqueueStreamResponse(
                    results=[jobs_pb2.EnqueueBatchResult(seq=batch.seq, jobs=[job])]
                )

    handler = grpc.stream_stream_rpc_method_handler(
        answer,
        request_deserializer=jobs_pb2.EnqueueStreamRequest.FromString,
        response_serializer=jobs_pb2.EnqueueStreamResponse.SerializeToString,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("shoal.v1.JobService", {"EnqueueStream": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    transport = GrpcTransport(f"127.0.0.1:{port}", Credentials())
    await transport.open()
    try:
        with pytest.raises(ShoalError, match="not valid"):
            await transport.enqueue([EnqueueRequest(task="t")])
        stored = await transport.enqueue([EnqueueRequest(task="t")])
        assert stored[0].job.id == "j2"
    finally:
        await transport.close()
        await server.stop(None)


class _EndedCall:
    """An `EnqueueStream` call the server ends at once, as grpc can report it: INTERNAL
    "Internal error from Core" (the server's own status lost). `sends` writes succeed first.
    """

    def __init__(self, sends: int, read_ends_first: bool = False) -> None:
        self.sends = sends
        #: The read reports the end while the write is still under way.
        self.read_ends_first = read_ends_first
        self.written: list[Any] = []
        self.writing = asyncio.Event()
        self.ended = asyncio.Event()
        self._cancelled = False

    async def write(self, request: Any) -> None:
        self.writing.set()
        for _ in range(5 if self.read_ends_first else 1):
            await asyncio.sleep(0)
        if len(self.written) >= self.sends:
            self.ended.set()
            raise _core_error()
        self.written.append(request)
        self.ended.set()  # the server ends the call after the message went out

    async def read(self) -> Any:
        await (self.writing if self.read_ends_first else self.ended).wait()
        raise _core_error()

    def cancel(self) -> bool:
        self._cancelled = True
        self.ended.set()
        return True

    def cancelled(self) -> bool:
        return self._cancelled


def _core_error() -> grpc.aio.AioRpcError:
    empty = grpc.aio.Metadata()
    return grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, empty, empty, "Internal error from Core")


class _Stub:
    def __init__(self, call: _EndedCall) -> None:
        self.call = call
        self.unary: list[jobs_pb2.EnqueueManyRequest] = []

    def EnqueueStream(self) -> _EndedCall:
        return self.call

    async def EnqueueMany(self, message: jobs_pb2.EnqueueManyRequest) -> Any:
        self.unary.append(message)
        job = model_pb2.Job(id="j1", namespace="default", queue="default", task="t")
        job.state = model_pb2.JOB_STATE_QUEUED
        return jobs_pb2.EnqueueManyResponse(
            results=[jobs_pb2.EnqueueResponse(job=job, created=True)]
        )


@pytest.mark.parametrize("read_ends_first", [False, True])
async def test_a_batch_whose_stream_ended_before_anything_was_sent_goes_unary_once(
    read_ends_first: bool,
) -> None:
    stub = _Stub(_EndedCall(sends=0, read_ends_first=read_ends_first))
    stream = EnqueueStream(stub)
    [stored] = await stream.enqueue([EnqueueRequest(task="t")])
    assert stored.job.id == "j1" and len(stub.unary) == 1  # sent once, by the unary call
    assert not stream.unary  # the next call tries a stream again


@pytest.mark.parametrize("read_ends_first", [False, True])
async def test_a_batch_that_may_have_been_sent_is_not_sent_again(read_ends_first: bool) -> None:
    stub = _Stub(_EndedCall(sends=1, read_ends_first=read_ends_first))
    stream = EnqueueStream(stub)
    with pytest.raises(ShoalError):
        await stream.enqueue([EnqueueRequest(task="t")])
    assert len(stub.call.written) == 1 and stub.unary == []  # it went out: no second copy


class _HangingCall(_EndedCall):
    """A call whose first write is still under way when the transport closes it."""

    def __init__(self) -> None:
        super().__init__(sends=0)

    async def write(self, request: Any) -> None:
        self.writing.set()
        await self.ended.wait()
        raise _core_error()

    async def read(self) -> Any:
        await self.ended.wait()
        raise asyncio.CancelledError  # what grpc raises on a call cancelled here


async def test_an_enqueue_cut_short_by_closing_the_transport_is_not_sent_again() -> None:
    stub = _Stub(_HangingCall())
    stream = EnqueueStream(stub)
    pending = asyncio.create_task(stream.enqueue([EnqueueRequest(task="t")]))
    await stub.call.writing.wait()
    await stream.close()
    with pytest.raises(Unavailable):
        await pending
    assert stub.unary == []  # a closing transport sends nothing more
