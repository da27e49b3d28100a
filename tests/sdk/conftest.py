"""Fixtures of the SDK tests: one app per test over each URL.

Every test that takes `app` runs once per `app_url` param: in local mode over memory and SQLite,
and in distributed mode against a real `shoal server` subprocess, over gRPC and over the native
framing (one server per session; each test works in a namespace of its own, so tests never see
each other's jobs).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from shoal.sdk import App, JobHandle
from tests.sdk import tasks


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A `shoal server` process on free loopback ports; its URLs by transport."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "shoal.cli", "server"),
                *("--store", "memory://", "--grpc-listen", "127.0.0.1:0"),
                *("--native-listen", "127.0.0.1:0"),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # "" if the server exits instead
        found = re.search(r"grpc=(\S+) native=(\S+)", ready)
        assert found, f"the server did not start: {ready!r}; see {log}"
        yield {"grpc": f"grpc://{found.group(1)}", "native": f"shoal://{found.group(2)}"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="session")
def grpc_server(server_urls: dict[str, str]) -> str:
    """The `grpc://` URL of the session's server."""
    return server_urls["grpc"]


@pytest.fixture(params=["memory", "sqlite", "grpc", "native"])
def app_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shoal.db'}"
    urls: dict[str, str] = request.getfixturevalue("server_urls")
    return urls[request.param]


@pytest.fixture
async def app(app_url: str) -> AsyncIterator[App]:
    """An open app with the test tasks and no worker of its own (tests run `Worker`s)."""
    tasks.started.clear()
    app = App(app_url, namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)
    app.include(tasks.registry)
    async with app:
        yield app


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until `check()` is true. Used only where the service has no event to wait for
    (progress reports), so it polls briefly.
    """
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def started(handle: JobHandle[Any], timeout: float = 20.0) -> None:
    """Wait until the task body of `handle`'s job runs (it reports progress first thing)."""

    async def check() -> bool:
        await handle.arefresh()
        return handle.progress is not None

    await eventually(check, timeout)


@asynccontextmanager
async def server_process(*args: str, port: int = 0) -> AsyncIterator[str]:
    """A `shoal server` process on `memory://` (plus `args`); its URL. Stopping it waits
    without blocking the loop, so that a worker can answer the server's drain request meanwhile.
    """
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "shoal.cli", "server", "--store", "memory://"),
            *("--grpc-listen", f"127.0.0.1:{port}", *args),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.to_thread(process.stdout.readline)
        found = re.search(r"grpc=(\S+)", ready)
        assert found, "the server did not start"
        yield f"grpc://{found.group(1)}"
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
        if process.stdout is not None:
            process.stdout.close()
