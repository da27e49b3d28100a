"""The gRPC worker stream with authentication on: a worker token works jobs of its namespace;
a viewer's stream, or one without credentials, is refused before it registers anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import (
    events_pb2,
    events_pb2_grpc,
    model_pb2,
    workers_pb2,
    workers_pb2_grpc,
)

from ._auth_env import NS, OTHER_NS, role_users, start_auth_server
from ._auth_ops import Creds

Msg = workers_pb2.WorkerMessage


async def _work_one(address: str, creds: Creds, enqueue: object) -> str:
    """Connect, take one job, complete it; the acknowledged state (or the refusal code)."""
    outbox: asyncio.Queue[Msg | None] = asyncio.Queue()
    hello = workers_pb2.Hello(namespace=NS, queues=["stream"], concurrency=1, language="python")
    outbox.put_nowait(Msg(hello=hello))  # credits follow the welcome, as a worker does

    async def requests() -> AsyncIterator[Msg]:
        while (message := await outbox.get()) is not None:
            yield message

    async with grpc.aio.insecure_channel(address) as channel:
        stub = workers_pb2_grpc.WorkerServiceStub(channel)
        try:
            call = stub.Connect(requests(), metadata=tuple(creds.header().items()))
            async for message in call:
                kind = message.WhichOneof("kind")
                if kind == "welcome":
                    outbox.put_nowait(Msg(credit=workers_pb2.Credit(credits=1)))
                    assert callable(enqueue)
                    await asyncio.to_thread(enqueue)
                elif kind == "assignments":
                    item = message.assignments.assignments[0]
                    outcomes = workers_pb2.Outcomes()
                    outcomes.completed.add(job_id=item.job.id, token=item.token, result=b"1")
                    outbox.put_nowait(Msg(outcomes=outcomes))
                elif kind == "acks":
                    outbox.put_nowait(None)
                    return str(model_pb2.JobState.Name(message.acks.acks[0].state))
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
    raise AssertionError("the stream ended without an outcome")


@pytest.mark.slow
def test_the_worker_stream_is_authenticated_and_authorized(tmp_path: Path) -> None:
    ids = role_users()
    server = start_auth_server(tmp_path, ids)
    producer = Creds(token=ids.tokens["t-producer"]).header()
    base = f"http://{server.ready['http']}"

    def enqueue() -> None:
        body = {"task": "t", "queue": "stream"}
        reply = httpx.post(
            f"{base}/api/v1/jobs", params={"namespace": NS}, json=body, headers=producer
        )
        assert reply.status_code == 201

    try:
        worker = Creds(token=ids.tokens["t-worker"])
        assert asyncio.run(_work_one(server.address, worker, enqueue)) == "JOB_STATE_SUCCEEDED"
        by_password = Creds("u-admin", ids.passwords["u-admin"])
        assert asyncio.run(_work_one(server.address, by_password, enqueue)) == "JOB_STATE_SUCCEEDED"
        viewer = Creds(token=ids.tokens["t-viewer"])
        assert asyncio.run(_work_one(server.address, viewer, enqueue)) == "PERMISSION_DENIED"
        assert asyncio.run(_work_one(server.address, Creds(), enqueue)) == "UNAUTHENTICATED"
        workers = httpx.get(
            f"{base}/api/v1/workers", params={"namespace": NS}, headers=producer
        ).json()["workers"]
        assert workers == []  # the refused streams registered nothing; the others left
        stats = httpx.get(f"{base}/api/v1/stats", params={"namespace": NS}, headers=producer)
        # two jobs worked; the refused streams were never welcomed (so enqueued nothing)
        assert stats.json()["by_state"]["succeeded"] == 2
        assert stats.json()["by_state"]["queued"] == 0
    finally:
        assert server.stop() == 0


async def _first_grpc_events(address: str, creds: Creds, enqueue: object) -> list[str]:
    """The namespaces of the first events a subscriber to every namespace receives while jobs
    are enqueued in `OTHER_NS` and `NS`, in that order, until one arrives.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        call = stub.Subscribe(
            events_pb2.SubscribeRequest(kinds=["job.enqueued"]),
            metadata=tuple(creds.header().items()),
        )
        first = asyncio.ensure_future(call.read())
        # the subscription starts in the server at a moment the client cannot see: enqueue
        # pairs until the first event comes
        while not first.done():
            assert callable(enqueue)
            await asyncio.to_thread(enqueue)
            await asyncio.wait([first], timeout=0.05)
        seen = [first.result().namespace]
        for _ in range(3):
            await asyncio.to_thread(enqueue)
            seen.append((await call.read()).namespace)
        call.cancel()
        return seen


async def _first_sse_events(base: str, creds: Creds, enqueue: object) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        params = {"namespace": "*", "kind": "job.enqueued"}
        async with client.stream(
            "GET", "/api/v1/events", params=params, headers=creds.header()
        ) as stream:
            lines = stream.aiter_lines()
            while await anext(lines) != ": connected":
                pass  # subscribed once this comment is sent
            for _ in range(2):
                assert callable(enqueue)
                await asyncio.to_thread(enqueue)
            seen = []
            while len(seen) < 2:
                line = await anext(lines)
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:])["namespace"])
            return seen


@pytest.mark.slow
def test_event_streams_show_only_readable_namespaces(tmp_path: Path) -> None:
    ids = role_users()
    server = start_auth_server(tmp_path, ids)
    base = f"http://{server.ready['http']}"
    root = Creds("root", ids.passwords["root"]).header()

    def enqueue_pair() -> None:
        for namespace in (OTHER_NS, NS):  # the other namespace's first: it must be skipped
            reply = httpx.post(
                f"{base}/api/v1/jobs",
                params={"namespace": namespace},
                json={"task": "t"},
                headers=root,
            )
            assert reply.status_code == 201

    try:
        viewer = Creds(token=ids.tokens["t-viewer"])
        assert asyncio.run(_first_grpc_events(server.address, viewer, enqueue_pair)) == [NS] * 4
        assert asyncio.run(_first_sse_events(base, viewer, enqueue_pair)) == [NS] * 2
        everyone = Creds("root", ids.passwords["root"])
        assert set(asyncio.run(_first_sse_events(base, everyone, enqueue_pair))) == {NS, OTHER_NS}
    finally:
        assert server.stop() == 0
