"""Outcomes larger than a server's message limit: the job fails, the worker carries on."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from shoal.core.errors import Unavailable
from shoal.core.model import Job, JobError, JobId, LeaseRef
from shoal.core.service import QueueService
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.protocols.grpc.listener import GrpcListener, GrpcOptions
from shoal.sdk import App, JobState, TaskFailed, Worker
from shoal.sdk._execution import Outcome
from shoal.sdk._leftovers import MAX_SETTLES, Leftovers
from shoal.sdk._outcomes import Running, fit_error
from shoal.stores.memory import MemoryStore
from tests.sdk import tasks

#: Larger than the server's message limit (the default 8 MiB).
_TOO_BIG = MAX_MESSAGE_BYTES + 1024 * 1024


@pytest.fixture(params=["grpc", "native"])
async def remote_app(request: pytest.FixtureRequest) -> AsyncIterator[App]:
    urls: dict[str, str] = request.getfixturevalue("server_urls")
    app = App(urls[request.param], namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)
    app.include(tasks.registry)
    async with app:
        yield app


async def test_a_result_over_the_message_limit_fails_the_job_and_the_worker_carries_on(
    remote_app: App,
) -> None:
    big = await tasks.big_result.aenqueue(_TOO_BIG)
    async with Worker(remote_app, concurrency=2):
        with pytest.raises(TaskFailed) as caught:
            await big.aresult(timeout=20)
        assert caught.value.type == "ResultTooLarge"
        assert f"the result is {_TOO_BIG + 2} bytes" in caught.value.remote_message  # JSON quotes
        assert big.job.attempt == 1  # not retried: it would be as large again
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=20) == 2


async def test_an_error_over_the_message_limit_is_cut_to_fit(remote_app: App) -> None:
    loud = await tasks.big_error.aenqueue(_TOO_BIG)
    async with Worker(remote_app):
        with pytest.raises(TaskFailed) as caught:
            await loud.aresult(timeout=20)
        assert caught.value.type == "ValueError"
        assert "bytes cut" in caught.value.remote_message
        assert "raise ValueError" in caught.value.traceback  # the tail, where the error is
        assert loud.state is JobState.FAILED
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=20) == 2


def test_fit_error_keeps_small_errors_and_cuts_large_ones_within_the_limit() -> None:
    small = JobError("ValueError", "bad", "Traceback ...")
    assert fit_error(small, 1000) is small and fit_error(small, None) is small
    large = JobError("ValueError", "é" * 5000, "Traceback (most recent call last)\n" + "y" * 9000)
    fitted = fit_error(large, 4000)
    size = sum(len(text.encode()) for text in (fitted.type, fitted.message, fitted.traceback))
    assert size <= 4000
    assert fitted.message.startswith("é") and fitted.traceback.startswith("Traceback")


class _SessionThatDies:
    """A worker session whose every outcome ends it (as a message over the limit would)."""

    session_secret = ""
    heartbeat_interval = 1.0
    max_outcome_bytes = None
    max_held = None
    draining = False

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        raise Unavailable("the worker stream broke")

    async def fail(self, lease: LeaseRef, error: JobError, retry_delay: float | None) -> None:
        raise Unavailable("the worker stream broke")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call: {name}")


async def test_an_outcome_no_session_takes_is_dropped_after_a_few_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("memory://", worker=None)
    app.include(tasks.registry)
    job = Job(JobId("j1"), "ns", "default", "add", b"{}", JobState.RUNNING, 1.0, 1.0, attempt=1)
    leftovers = Leftovers()
    leftovers.report_later(Running(job, LeaseRef("j1", "token")), Outcome(value=2))
    sessions: Sequence[Any] = [_SessionThatDies() for _ in range(MAX_SETTLES)]
    for session in sessions[:-1]:
        await leftovers.settle(app, session)
        assert leftovers.leases() == [LeaseRef("j1", "token")]  # kept for the next session
    await leftovers.settle(app, sessions[-1])
    assert leftovers.leases() == []
    assert "dropping the outcome of job j1" in caplog.text


async def test_a_result_over_grpcs_default_receive_limit_reaches_the_client(
    remote_app: App,
) -> None:
    size = 5 * 1024 * 1024  # over gRPC's 4 MiB default, within what a result may be
    handle = await tasks.big_result.aenqueue(size)
    async with Worker(remote_app):
        assert len(await handle.aresult(timeout=20)) == size


@contextlib.asynccontextmanager
async def _app_on_a_server_bounded_at(kind: str, limit: int) -> AsyncIterator[App]:
    """An app on an in-process server whose messages are bounded at `limit` (a config's
    `server.max_message_bytes` below the default).
    """
    service = QueueService(MemoryStore())
    await service.store.open()
    listener = GrpcListener(service, GrpcOptions(max_message_bytes=limit))
    if kind == "grpc":
        url = f"grpc://{await listener.start('127.0.0.1', 0)}"
    else:
        url = f"shoal://{await listener.start_native('127.0.0.1', 0)}"
    app = App(url, worker=None)
    app.include(tasks.registry)
    try:
        async with app:
            yield app
    finally:
        await listener.stop(0.5)
        await service.store.close()


@pytest.fixture(params=["grpc", "native"])
async def small_limit_app(request: pytest.FixtureRequest) -> AsyncIterator[App]:
    async with _app_on_a_server_bounded_at(request.param, _SMALL_LIMIT) as app:
        yield app


_SMALL_LIMIT = 2 * 1024 * 1024


async def test_a_result_over_a_smaller_configured_limit_fails_the_job(
    small_limit_app: App,
) -> None:
    # the worker learns the server's limit from its welcome: it bounded results by the
    # default 8 MiB, and a 3 MiB result ended its stream on every session, for ever
    size = 3 * 1024 * 1024
    big = await tasks.big_result.aenqueue(size)
    async with Worker(small_limit_app, concurrency=2):
        with pytest.raises(TaskFailed) as caught:
            await big.aresult(timeout=20)
        assert caught.value.type == "ResultTooLarge"
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=20) == 2


async def test_a_limit_just_over_the_payload_limit_still_takes_small_results() -> None:
    # the bound is the limit less the job's own payload (and room for an error), not less the
    # largest payload: 1.25 MiB, valid with 1 MiB payloads, refused every result
    async with _app_on_a_server_bounded_at("grpc", 1280 * 1024) as app:
        async with Worker(app):
            assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=20) == 2
