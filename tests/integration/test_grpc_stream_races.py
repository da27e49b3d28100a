"""Worker streams against what races them, on an in-process listener over SQLite (inline
writes, as the server runs): a kick while the stream's claims go on, a heartbeat the store
refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio
import pytest

from shoal.core.errors import LeaseLost, StorageError, Unavailable
from shoal.core.model import Job, JobQuery, JobState, LeaseRef, WorkerInfo
from shoal.core.ports import HeartbeatResult
from shoal.core.service import QueueService, ServiceSettings
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc.gen.shoal.v1 import native_pb2, workers_pb2, workers_pb2_grpc
from shoal.protocols.grpc.listener import GrpcListener
from shoal.protocols.grpc.native.frames import PREFACE, Kind, encode
from shoal.sdk._grpc import GrpcTransport
from shoal.sdk._transport import WorkerSession
from shoal.stores.memory import MemoryStore
from shoal.stores.sqlite import SqliteStore

_CONNECT = "/shoal.v1.WorkerService/Connect"


@contextlib.asynccontextmanager
async def _listening(tmp_path: Path) -> AsyncIterator[tuple[QueueService, GrpcListener, int]]:
    store = SqliteStore(tmp_path / "races.db", inline_writes=True)
    await store.open()
    service = QueueService(store, ServiceSettings(lease_ttl=30.0))
    listener = GrpcListener(service)
    await listener.start("127.0.0.1", 0)
    address = await listener.start_native("127.0.0.1", 0)
    try:
        yield service, listener, int(address.rsplit(":", 1)[1])
    finally:
        await listener.stop(0.5)
        await store.close()


async def _leased_to(service: QueueService, worker_id: str) -> list[str]:
    page = await service.list_jobs(JobQuery(state=JobState.RUNNING, limit=1000))
    return [job.id for job in page.jobs if job.worker_id == worker_id]


async def _enqueue(service: QueueService, count: int) -> None:
    await service.enqueue_many([EnqueueRequest("t", queue="q") for _ in range(count)])


async def test_a_kicked_stream_takes_nothing_more_and_leaves_nothing_leased(
    tmp_path: Path,
) -> None:
    async with _listening(tmp_path) as (service, listener, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # a worker that reads slowly: the server may send it two messages, no more, so the
        # kick's goodbye waits behind them while the stream's claims go on
        header = native_pb2.CallHeader(method=_CONNECT, window=2).SerializeToString()
        hello = workers_pb2.WorkerMessage(hello=workers_pb2.Hello(queues=["q"]))
        credit = workers_pb2.WorkerMessage(credit=workers_pb2.Credit(credits=100))
        writer.write(PREFACE + encode(Kind.CALL, 1, header))
        writer.write(encode(Kind.MESSAGE, 1, hello.SerializeToString()))
        writer.write(encode(Kind.MESSAGE, 1, credit.SerializeToString()))
        async with asyncio.timeout(5):
            while not listener.workers.sessions:
                await asyncio.sleep(0.01)
        [worker_id] = listener.workers.sessions
        await _enqueue(service, 3)
        await asyncio.sleep(0.2)

        assert len(await service.kick_worker("default", worker_id)) == 3
        await asyncio.sleep(0.2)
        await _enqueue(service, 4)
        await asyncio.sleep(0.2)
        # the stream took the released jobs straight back, and the new ones, and its end
        # released none of them: they waited out their lease, and the reaper failed them
        assert await _leased_to(service, worker_id) == []

        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await asyncio.sleep(0.3)
        assert await _leased_to(service, worker_id) == []
        assert (await service.stats("default")).by_state.get(JobState.QUEUED) == 7
        del reader  # the server's frames were never read: the slow reader


@contextlib.asynccontextmanager
async def _worker_session(listener: GrpcListener) -> AsyncIterator[tuple[GrpcTransport, Any]]:
    """An SDK worker session over gRPC on queue `q`, and its transport."""
    transport = GrpcTransport(f"grpc://{listener.address}")
    await transport.open()
    worker = WorkerInfo("w", "default", ("q",), connected_at=0.0, last_heartbeat=0.0)
    session = await transport.connect_worker(worker, lambda job_id: None)
    try:
        yield transport, session
    finally:
        await session.close()
        await transport.close()


async def _claim_one(session: WorkerSession) -> LeaseRef:
    [job] = await session.claim(["q"], 1, 5.0)
    return LeaseRef(job.id, job.lease_token or "")


@contextlib.asynccontextmanager
async def _holding_a_job(
    service: QueueService, listener: GrpcListener
) -> AsyncIterator[tuple[WorkerSession, LeaseRef]]:
    """An SDK worker session over gRPC that holds one job of queue `q`, and its lease."""
    async with _worker_session(listener) as (_, session):
        await _enqueue(service, 1)
        yield session, await _claim_one(session)


async def _claimed_twice(service: QueueService, session: WorkerSession) -> tuple[LeaseRef, ...]:
    """One job's lease as the session first held it, and as it holds it again: the first
    attempt's lease was lost (released here, as when it expires) and the job came back to it.
    """
    await _enqueue(service, 1)
    old = await _claim_one(session)
    await service.release([old])
    new = await _claim_one(session)
    assert (new.job_id, new.token != old.token) == (old.job_id, True)
    return old, new


async def test_a_refused_heartbeat_is_answered_and_the_next_ones_pair_up(tmp_path: Path) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _holding_a_job(service, listener) as (session, lease):
            store_heartbeat = service.store.heartbeat
            refusals = [StorageError("database is locked")]

            async def heartbeat_once_refused(*args: Any, **kwargs: Any) -> HeartbeatResult:
                if refusals:
                    raise refusals.pop()
                return await store_heartbeat(*args, **kwargs)

            service.store.heartbeat = heartbeat_once_refused  # type: ignore[method-assign]
            # the refusal came as an Error only: this heartbeat waited for ever, and each later
            # ack answered the heartbeat before it
            async with asyncio.timeout(5):
                assert await session.heartbeat([lease]) == HeartbeatResult((), (), ())
                assert (await session.heartbeat([lease])).renewed == (lease.job_id,)


async def test_a_refused_progress_report_is_not_the_answer_to_the_jobs_outcome(
    tmp_path: Path,
) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _holding_a_job(service, listener) as (session, lease):
            await session.progress(lease, 2.0)  # refused: above 1
            # the refusal named the job, and the completion sent after it raised with it
            async with asyncio.timeout(5):
                await session.complete(lease, b"42")
            stored = await service.get("default", lease.job_id)
            assert (stored.state, stored.result) == (JobState.SUCCEEDED, b"42")


async def test_a_stream_heartbeat_keeps_the_workers_record_fresh(tmp_path: Path) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _holding_a_job(service, listener) as (session, lease):
            [before] = await service.list_workers("default")
            await asyncio.sleep(0.05)
            await session.heartbeat([lease])
            [after] = await service.list_workers("default")
            assert after.last_heartbeat > before.last_heartbeat


class SlowHelloStore(MemoryStore):
    """A memory store whose worker writes wait for the test to let them through."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.go_on = asyncio.Event()

    async def upsert_worker(self, worker: WorkerInfo) -> None:
        self.writing.set()
        await self.go_on.wait()
        await super().upsert_worker(worker)


async def test_a_stream_whose_hello_is_stored_during_shutdown_is_drained() -> None:
    # The server starts draining while the hello's worker record is being written: the stream
    # opens after drain_all looked at the sessions, and must be drained all the same.
    store = SlowHelloStore()
    await store.open()
    service = QueueService(store)
    listener = GrpcListener(service)
    address = await listener.start("127.0.0.1", 0)
    outbox: asyncio.Queue[workers_pb2.WorkerMessage | None] = asyncio.Queue()
    outbox.put_nowait(workers_pb2.WorkerMessage(hello=workers_pb2.Hello(queues=["q"])))

    async def requests() -> AsyncIterator[workers_pb2.WorkerMessage]:
        while (message := await outbox.get()) is not None:
            yield message

    stopping: asyncio.Task[None] | None = None
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            call = workers_pb2_grpc.WorkerServiceStub(channel).Connect(requests())
            messages = aiter(call)
            async with asyncio.timeout(5):
                await store.writing.wait()
            stopping = asyncio.create_task(listener.stop(5.0))
            async with asyncio.timeout(5):
                while not listener.workers.closing:
                    await asyncio.sleep(0.01)
            store.go_on.set()
            async with asyncio.timeout(2):
                kinds = [(await anext(messages)).WhichOneof("kind") for _ in range(2)]
            assert kinds == ["welcome", "drain"]
    finally:
        outbox.put_nowait(None)  # the worker leaves: the shutdown goes on without waiting
        store.go_on.set()
        await asyncio.wait_for(stopping or listener.stop(0.5), 5)
        await store.close()


async def test_two_outcomes_of_one_job_in_flight_each_get_their_own_answer(
    tmp_path: Path,
) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _worker_session(listener) as (_, session):
            old, new = await _claimed_twice(service, session)
            # the lost attempt still reports while the new one does: the server refuses the
            # old token and takes the new one; the refusal used to answer the new outcome
            # (which had replaced the old one's waiter) and the old one waited for ever
            late = asyncio.create_task(session.complete(old, b"old"))
            current = asyncio.create_task(session.complete(new, b"new"))
            async with asyncio.timeout(5):
                await current
                with pytest.raises(LeaseLost):
                    await late
            stored = await service.get("default", new.job_id)
            assert (stored.state, stored.result) == (JobState.SUCCEEDED, b"new")


async def test_an_outcome_whose_caller_gave_up_still_takes_its_own_answer(
    tmp_path: Path,
) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _worker_session(listener) as (_, session):
            old, new = await _claimed_twice(service, session)
            late = asyncio.create_task(session.complete(old, b"old"))
            await asyncio.sleep(0)  # in the batch, unanswered
            late.cancel()
            # the old attempt's refusal is still coming: it must not answer the new outcome
            async with asyncio.timeout(5):
                await session.complete(new, b"new")
            stored = await service.get("default", new.job_id)
            assert (stored.state, stored.result) == (JobState.SUCCEEDED, b"new")


async def test_the_streams_end_fails_every_outcome_still_waiting(tmp_path: Path) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _worker_session(listener) as (transport, session):
            old, new = await _claimed_twice(service, session)
            store_complete = service.store.complete
            stored = asyncio.Event()

            async def complete_later(*args: Any, **kwargs: Any) -> Job:
                await stored.wait()
                return await store_complete(*args, **kwargs)

            service.store.complete = complete_later  # type: ignore[method-assign]
            outcomes = [asyncio.create_task(session.complete(lease, b"x")) for lease in (old, new)]
            await asyncio.sleep(0.2)  # on the wire, the store holding them
            await transport.close()  # the stream ends unanswered
            try:
                async with asyncio.timeout(5):
                    for outcome in outcomes:
                        with pytest.raises(Unavailable):
                            await outcome
            finally:
                stored.set()


async def test_concurrent_claims_each_wake_when_jobs_arrive(tmp_path: Path) -> None:
    # a started worker's claim loop and its run_until_idle claim on one session at once
    async with _listening(tmp_path) as (service, listener, _):
        async with _worker_session(listener) as (_, session):
            first = asyncio.create_task(session.claim(["q"], 2, 3.0))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(session.claim(["q"], 1, 3.0))
            await asyncio.sleep(0.05)
            await _enqueue(service, 2)
            # one wake-up slot: the second claim's waiter replaced the first's, and took one
            # job; the first slept its whole wait beside the job assigned to it
            async with asyncio.timeout(1.5):
                claimed = [*await first, *await second]
            assert len(claimed) == 2


async def test_an_outcome_refused_as_lost_leaves_nothing_held(tmp_path: Path) -> None:
    async with _listening(tmp_path) as (service, listener, _):
        async with _holding_a_job(service, listener) as (session, lease):
            [held_by] = listener.workers.sessions.values()
            await service.release([lease])  # as when it expires, before any heartbeat says so
            with pytest.raises(LeaseLost):
                async with asyncio.timeout(5):
                    await session.complete(lease, b"late")
            assert held_by.held == {}
