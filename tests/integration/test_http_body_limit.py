"""The HTTP app's request-body limit: a body over `server.max_message_bytes` is refused with 413
before routing (and so before authentication and parsing), whether its size is announced by
Content-Length or only found while it streams in chunks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI

from shoal.config import load_config
from shoal.core.access import AccessService
from shoal.core.identity import IdentityStore
from shoal.core.model import JobQuery
from shoal.core.service import QueueService
from shoal.protocols.http import HttpSettings, create_app
from shoal.server import Server
from shoal.stores.memory import MemoryStore

LIMIT = 4096
_JSON = {"content-type": "application/json"}


@pytest.fixture
def service() -> QueueService:
    return QueueService(MemoryStore())


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://shoal")


@pytest.fixture
async def client(service: QueueService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service, settings=HttpSettings(max_body_bytes=LIMIT))
    async with app.router.lifespan_context(app), _client(app) as client:
        yield client


def _job(size: int) -> bytes:
    """An enqueue body of exactly `size` bytes."""
    empty = json.dumps({"task": "t", "payload": ""}).encode()
    return json.dumps({"task": "t", "payload": "x" * (size - len(empty))}).encode()


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _jobs(service: QueueService) -> int:
    return len((await service.list_jobs(JobQuery())).jobs)


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:200]
    error = response.json()["error"]
    assert error["code"] == "resource_exhausted" and str(LIMIT) in error["message"]


async def test_a_body_over_the_limit_is_413_and_enqueues_nothing(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    response = await client.post("/api/v1/jobs", content=_job(LIMIT + 1), headers=_JSON)
    _assert_too_large(response)
    assert await _jobs(service) == 0
    at_limit = await client.post("/api/v1/jobs", content=_job(LIMIT), headers=_JSON)
    assert at_limit.status_code == 201, at_limit.text
    assert await _jobs(service) == 1


async def test_a_chunked_body_is_stopped_once_past_the_limit(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    over = await client.post("/api/v1/jobs", content=_chunks(_job(LIMIT + 1)), headers=_JSON)
    assert "content-length" not in over.request.headers
    _assert_too_large(over)
    assert await _jobs(service) == 0
    under = await client.post("/api/v1/jobs", content=_chunks(_job(LIMIT)), headers=_JSON)
    assert under.status_code == 201, under.text
    assert await _jobs(service) == 1


async def test_the_limit_is_checked_before_authentication(service: QueueService) -> None:
    # Authentication runs as a route dependency, after FastAPI has read the whole body: the
    # limit must come first, or an anonymous caller can make the server hold any body.
    access = AccessService(cast(IdentityStore, service.store), enabled=True)
    app = create_app(service, settings=HttpSettings(max_body_bytes=LIMIT), access=access)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post("/api/v1/jobs", content=_job(LIMIT + 1))
        _assert_too_large(response)
        small = await client.post("/api/v1/jobs", content=_job(100))
        assert small.status_code == 401


async def _raw_request(port: int, head: bytes) -> bytes:
    """Send a request head (no body) and read the answer's head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()


async def test_the_server_refuses_an_announced_body_without_reading_it(tmp_path: Path) -> None:
    # The server's limit is its `server.max_message_bytes` (what gRPC takes): it answers as soon
    # as the head announces more, without waiting for (or holding) a byte of the body.
    limit = 2 * 1024 * 1024
    overrides = {
        "store.url": "memory://",
        "server.grpc_listen": "",
        "server.http_listen": "127.0.0.1:0",
        "server.max_message_bytes": limit,
    }
    server = Server(load_config(path=None, env={}, overrides=overrides).config)
    ready = await server.start()
    try:
        port = int(ready.http.rsplit(":", 1)[1])
        for size, status in ((limit + 1, b" 413 "), (200 * 1024 * 1024, b" 413 ")):
            head = (
                b"POST /api/v1/jobs HTTP/1.1\r\nHost: shoal\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
            )
            answer = await _raw_request(port, head)
            assert status in answer.split(b"\r\n", 1)[0], answer
        # A batch that fills the limit but for a few bytes still goes through.
        job = {"task": "t", "payload": "x" * (limit // 2 - 100)}
        batch = json.dumps({"jobs": [job, job]}).encode()
        assert limit - 300 < len(batch) <= limit
        async with httpx.AsyncClient(base_url=f"http://{ready.http}", timeout=10) as http:
            fits = await http.post("/api/v1/jobs/batch", content=batch, headers=_JSON)
            assert fits.status_code == 201, fits.text
    finally:
        await server.stop()
