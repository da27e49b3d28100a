"""A server lets a worker session hold at most `limits.max_batch` credits (10,000 by default)
and refuses a grant above it whole. A worker whose free slots exceed that must still take jobs:
its credit count may not include a grant the server refused (it then believed the server held
credits and never granted again, leaving the worker idle for ever).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid

from shoal.core.model import LeaseRef
from shoal.protocols.grpc.gen.shoal.v1 import model_pb2, workers_pb2
from shoal.sdk import App, Worker
from shoal.sdk._transport import LostSession
from tests.sdk import tasks
from tests.sdk.conftest import server_process
from tests.sdk.test_credits import _session


async def _run_jobs(url: str, concurrency: int, count: int) -> None:
    app = App(url, namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)
    app.include(tasks.registry)
    add = app.find_task("async_add")
    assert add is not None
    async with app:
        handles = await add.aenqueue_many([(i, 1) for i in range(count)])
        async with Worker(app, concurrency=concurrency, pool="asyncio", shutdown_grace=5.0):
            results = [await handle.aresult(timeout=10.0) for handle in handles]
    assert results == [i + 1 for i in range(count)]


async def test_a_worker_above_the_default_credit_limit_takes_jobs(grpc_server: str) -> None:
    await _run_jobs(grpc_server, concurrency=10_001, count=3)


async def test_a_worker_above_a_configured_credit_limit_takes_jobs() -> None:
    async with server_process("--set", "limits.max_batch=8") as url:
        await _run_jobs(url, concurrency=20, count=8)


def _welcome(session: object, max_credits: int) -> None:
    welcome = workers_pb2.Welcome(worker_id="w", max_credits=max_credits)
    session._bound_by(welcome)  # type: ignore[attr-defined]


async def test_the_welcome_says_the_credit_limit_and_no_grant_is_refused() -> None:
    session, call = _session(concurrency=20)
    _welcome(session, 8)
    await session.claim(["q"], 20, 0.0)
    assert call.credits == [8]


async def test_a_server_configured_above_the_default_limit_gets_more_credits() -> None:
    session, call = _session(concurrency=30_000)
    _welcome(session, 50_000)
    await session.claim(["q"], 30_000, 0.0)
    assert call.credits == [30_000]


async def test_the_servers_welcome_carries_its_credit_limit() -> None:
    async with server_process("--set", "limits.max_batch=8") as url:
        app = App(url, namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)
        async with app, Worker(app, concurrency=20, pool="asyncio") as worker:
            session = worker._session  # type: ignore[attr-defined]
            assert session is not None and session._credit_cap == 8


def _refuse_credits(session: object) -> None:
    error = model_pb2.Error(code="invalid_argument", message="at most 8", field="credits")
    session._dispatch(workers_pb2.ServerMessage(error=error))  # type: ignore[attr-defined]


async def test_a_refused_grant_is_not_counted_and_later_grants_are_smaller() -> None:
    session, call = _session(concurrency=20)
    assert await session.claim(["q"], 20, 0.0) == []
    _refuse_credits(session)  # the server holds none of the 20
    assert session._outstanding == 0
    await session.claim(["q"], 20, 0.0)
    _refuse_credits(session)
    await session.claim(["q"], 20, 0.0)
    assert call.credits == [20, 10, 5] and session._outstanding == 5


async def test_a_grant_refused_while_being_sent_is_granted_again_without_waiting() -> None:
    session, call = _session(concurrency=20)
    write = call.write

    async def refused_meanwhile(message: workers_pb2.WorkerMessage) -> None:
        await write(message)
        _refuse_credits(session)  # read before the claim waits: no claim to wake yet

    call.write = refused_meanwhile  # type: ignore[method-assign]
    async with asyncio.timeout(5):  # not the 30 s the claim may wait for work
        assert await session.claim(["q"], 20, 30.0) == []
    assert call.credits == [20] and session._outstanding == 0


async def test_a_session_holds_at_most_the_default_credit_limit() -> None:
    session, call = _session(concurrency=10_001)
    await session.claim(["q"], 10_001, 0.0)
    assert call.credits == [10_000]


async def test_a_worker_holding_more_than_the_limit_still_reconnects() -> None:
    # A worker of 20 slots on a server of max_batch 8 may hold 20 leases when its stream
    # breaks; a hello naming all 20 was refused whole, at every attempt, for ever.
    async with server_process("--set", "limits.max_batch=8") as url:
        app = App(url, namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)
        async with app, Worker(app, concurrency=20, pool="asyncio") as worker:
            old = worker._session  # type: ignore[attr-defined]
            assert old is not None and old.max_held == 8
            held = tuple(LeaseRef(f"job-{i}", "token") for i in range(20))
            lost = LostSession(secrets.token_urlsafe(32), held, old.max_held)
            info = worker._info()  # type: ignore[attr-defined]
            session = await app.transport.connect_worker(info, lambda job_id: None, lost=lost)
            assert session.session_secret
            await session.close()
