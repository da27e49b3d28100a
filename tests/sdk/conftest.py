"""Fixtures of the SDK tests: one app per test over each local URL.

Every test that takes `app` runs once per `app_url` param; a `grpc://` variant (a server in a
subprocess) is added by adding a param here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from shoal.sdk import App, JobHandle
from tests.sdk import tasks


@pytest.fixture(params=["memory", "sqlite"])
def app_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path / 'shoal.db'}"


@pytest.fixture
async def app(app_url: str) -> AsyncIterator[App]:
    """An open app with the test tasks and no worker of its own (tests run `Worker`s)."""
    tasks.started.clear()
    app = App(app_url, worker=None)
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


async def started(handle: JobHandle[object], timeout: float = 20.0) -> None:
    """Wait until the task body of `handle`'s job runs (it reports progress first thing)."""

    async def check() -> bool:
        await handle.arefresh()
        return handle.progress is not None

    await eventually(check, timeout)
