"""A task may report progress as often as it likes: the worker sends only the latest value, at
most one message per job every `PROGRESS_EVERY` seconds. One message per call flooded the
worker's stream (each is a store write on the server), and 100,000 of them held up its reading.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.core.model import LeaseRef
from shoal.sdk import App, TaskFailed, Worker
from shoal.sdk._grpc_session import GrpcSession
from shoal.sdk._local import LocalSession
from tests.sdk import tasks


async def test_a_task_reporting_in_a_loop_sends_a_few_messages_and_the_last_value(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[float] = []
    for session_class in (GrpcSession, LocalSession):
        report: Any = session_class.progress

        async def counting(self: Any, lease: LeaseRef, value: float, report: Any = report) -> None:
            sent.append(value)
            await report(self, lease, value)

        monkeypatch.setattr(session_class, "progress", counting)
    handle = await tasks.progress_storm.aenqueue(10_000)
    async with Worker(app, shutdown_grace=5.0):
        async with asyncio.timeout(10):
            while handle.progress != 0.75:  # the latest value, while the job still runs
                await asyncio.sleep(0.02)
                await handle.arefresh()
        assert await handle.aresult(timeout=10) == handle.id
    assert sent[-1] == 0.75
    assert 1 < len(sent) < 60, len(sent)


@pytest.mark.parametrize("kind", ["thread", "async", "async with a pause"])
async def test_a_job_that_fails_keeps_the_last_progress_it_reported(app: App, kind: str) -> None:
    # Failed and cancelled jobs keep the progress they reached (a success sets 1.0), so the
    # latest value still waiting for its turn is sent before the outcome. An async task
    # reports from the worker's loop itself: its value must not queue behind the outcome.
    if kind == "thread":
        handle = await tasks.progress_then_fail.aenqueue()
    else:
        handle = await tasks.progress_then_fail_async.aenqueue(0.01 if "pause" in kind else 0)
    async with Worker(app, shutdown_grace=5.0):
        with pytest.raises(TaskFailed):
            await handle.aresult(timeout=10)
    await handle.arefresh()
    assert handle.progress == 0.6
