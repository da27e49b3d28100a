"""A revoked token ends what was opened with it: a dashboard session, a TCP session, a worker
stream. Each outlived the request that authenticated it, and kept working after the revocation
(a bearer request and a unary call were refused, the rest went on).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2, workers_pb2_grpc

from ._auth_env import NS, Identities, role_users, start_auth_server
from ._grpc_server import ServerProcess

Msg = workers_pb2.WorkerMessage


class _Tcp:
    """One TCP session, a line at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, line: str) -> str:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()
        return (await asyncio.wait_for(self.reader.readline(), 10)).decode().rstrip("\n")


async def _worker_stream(address: str, token: str, outbox: asyncio.Queue[Msg | None]) -> object:
    hello = workers_pb2.Hello(namespace=NS, queues=["revoked"], concurrency=1)
    outbox.put_nowait(Msg(hello=hello))

    async def requests() -> AsyncIterator[Msg]:
        while (message := await outbox.get()) is not None:
            yield message

    channel = grpc.aio.insecure_channel(address)
    stub = workers_pb2_grpc.WorkerServiceStub(channel)
    return channel, stub.Connect(requests(), metadata=(("authorization", f"Bearer {token}"),))


@pytest.mark.slow
async def test_a_revoked_token_ends_the_sessions_and_streams_opened_with_it(
    tmp_path: Path,
) -> None:
    ids = role_users()
    server = await asyncio.to_thread(start_auth_server, tmp_path, ids)
    try:
        await _revoke_while_open(server, ids)
    finally:
        server.stop()


async def _revoke_while_open(server: ServerProcess, ids: Identities) -> None:
    base = f"http://{server.ready['http']}"
    root = ("root", ids.passwords["root"])
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        made = await admin.post(
            "/api/v1/tokens", json={"owner": "ci", "grants": {NS: ["admin"]}}, auth=root
        )
        token, token_id = made.json()["token"], made.json()["id"]
        # a dashboard session, a TCP session and a worker stream, all with the token
        dashboard = httpx.AsyncClient(base_url=base, timeout=10)
        assert (await dashboard.post("/login", json={"token": token})).status_code == 200
        jobs = {"namespace": NS, "limit": 1}
        assert (await dashboard.get("/api/v1/jobs", params=jobs)).status_code == 200
        host, _, port = server.ready["tcp"].rpartition(":")
        tcp = _Tcp(*await asyncio.open_connection(host, int(port)))
        assert await tcp.call(f"AUTH ci {token}") == "Welcome!"
        assert await tcp.call(f"USE_GROUP {NS}") == "OK"
        outbox: asyncio.Queue[Msg | None] = asyncio.Queue()
        channel, stream = await _worker_stream(server.address, token, outbox)
        assert (await stream.read()).WhichOneof("kind") == "welcome"  # type: ignore[attr-defined]

        revoked = await admin.delete(f"/api/v1/tokens/{token_id}", auth=root)
        assert revoked.status_code == 200

        assert (await dashboard.get("/api/v1/jobs", params=jobs)).status_code == 401
        assert (await dashboard.get("/api/v1/me")).status_code == 401  # no right needed there
        assert (await tcp.call("PUBLISH q t after-revoke")).startswith("Err:")
        outbox.put_nowait(Msg(credit=workers_pb2.Credit(credits=1)))
        enqueued = await admin.post(
            "/api/v1/jobs", params={"namespace": NS}, json={"task": "t", "queue": "revoked"},
            auth=root,
        )  # fmt: skip
        assert enqueued.status_code == 201
        kinds = []
        try:
            while (message := await stream.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
                kinds.append(message.WhichOneof("kind"))
        except grpc.aio.AioRpcError as error:
            kinds.append(error.code().name)
        assert "assignments" not in kinds and kinds[-1] in ("error", "UNAUTHENTICATED"), kinds
        path = f"/api/v1/jobs/{enqueued.json()['job']['id']}"
        job = (await admin.get(path, params={"namespace": NS}, auth=root)).json()
        assert job["state"] == "queued"
        outbox.put_nowait(None)
        await channel.close()  # type: ignore[attr-defined]
        tcp.writer.close()
        await dashboard.aclose()
