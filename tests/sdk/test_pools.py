"""Where tasks run (asyncio, thread, process pools) and how they stop: cancellation while
running, timeouts, graceful shutdown. Runs in every mode (`app_url`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shoal.sdk import (
    App,
    JobCancelled,
    JobHandle,
    JobState,
    Pool,
    TaskFailed,
    Worker,
    WorkerConfig,
    current_job,
)
from tests.sdk import tasks
from tests.sdk.conftest import started

POOLS: list[Pool] = ["asyncio", "thread", "process"]


@pytest.mark.parametrize("pool", POOLS)
async def test_runs_sync_and_async_tasks(app: App, pool: Pool) -> None:
    handles = [await tasks.add.aenqueue(1, 2), await tasks.async_add.aenqueue(3, 4)]
    point = await tasks.shift.aenqueue(tasks.Point(0, 0))
    await Worker(app, concurrency=2, pool=pool).run_until_idle(timeout=60)
    assert [await handle.aresult(timeout=1) for handle in handles] == [3, 7]
    assert await point.aresult(timeout=1) == tasks.Point(1, 1)


@pytest.mark.parametrize("pool", POOLS)
async def test_an_error_whose_str_raises_is_still_reported(app: App, pool: Pool) -> None:
    handles = [await tasks.unspeakable.aenqueue(), await tasks.unspeakable_async.aenqueue()]
    async with Worker(app, concurrency=2, pool=pool):
        for handle in handles:
            with pytest.raises(TaskFailed) as caught:
                await handle.aresult(timeout=20)
            assert caught.value.type == "Unspeakable"
            assert caught.value.remote_message == "<str() of the Unspeakable raised>"
            assert "raise Unspeakable()" in caught.value.traceback


async def test_an_error_with_nul_and_a_lone_surrogate_keeps_its_words(app: App) -> None:
    # the service refuses both in error texts (PostgreSQL cannot store NUL, and a lone
    # surrogate has no UTF-8 form): the worker escapes them instead of losing the message
    handle = await tasks.garbled.aenqueue()
    await Worker(app, concurrency=1).run_until_idle(timeout=30)
    with pytest.raises(TaskFailed) as caught:
        await handle.aresult(timeout=5)
    assert caught.value.type == "ValueError"
    assert caught.value.remote_message == "nul \\x00, lone \\udcff"
    assert "nul \\x00, lone \\udcff" in caught.value.traceback


@pytest.mark.parametrize("pool", POOLS)
async def test_a_task_that_raises_system_exit_fails_and_the_worker_carries_on(
    app: App, pool: Pool
) -> None:
    # an async task's SystemExit escaped to the event loop and ended the worker's process
    exiting = [await tasks.exits.aenqueue(), await tasks.exits_async.aenqueue()]
    after = await tasks.add.aenqueue(1, 2)
    async with Worker(app, concurrency=1, pool=pool):
        for handle in exiting:
            with pytest.raises(TaskFailed) as caught:
                await handle.aresult(timeout=20)
            assert caught.value.type == "SystemExit"
        assert await after.aresult(timeout=20) == 3


async def test_a_thread_abandoned_after_its_timeout_holds_its_slot_until_it_ends(
    app: App,
) -> None:
    # the slot freed when the job timed out, though its thread still ran: the worker took
    # the next job, which waited behind that thread, leased and not started, while an idle
    # worker could have run it
    tasks.RELEASE.clear()
    hung = await tasks.hangs.aenqueue()
    try:
        async with Worker(app, concurrency=1, pool="thread"):
            with pytest.raises(TaskFailed) as caught:
                await hung.aresult(timeout=10)
            assert caught.value.type == "Timeout"
            quick = await tasks.add.aenqueue(1, 2)
            async with Worker(app, concurrency=1, pool="thread"):
                assert await quick.aresult(timeout=5) == 3
            tasks.RELEASE.set()
    finally:
        tasks.RELEASE.set()


async def test_burst_mode_claims_nothing_while_an_abandoned_thread_holds_every_slot(
    app: App,
) -> None:
    # run_until_idle claimed `concurrency` jobs whatever the slots held: the next job waited
    # behind the blocked thread, leased, and the claim after that asked for -1 jobs
    tasks.RELEASE.clear()
    hung = await tasks.hangs.aenqueue()
    burst = asyncio.ensure_future(Worker(app, concurrency=1, pool="thread").run_until_idle(30))
    try:
        with pytest.raises(TaskFailed):
            await hung.aresult(timeout=10)
        quick = await tasks.add.aenqueue(1, 2)
        async with Worker(app, concurrency=1, pool="thread"):
            assert await quick.aresult(timeout=5) == 3
    finally:
        tasks.RELEASE.set()
        await burst


async def test_a_worker_that_fails_on_a_job_reports_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("a bug in the worker")

    monkeypatch.setattr("shoal.sdk._worker.execute", broken)
    app = App("memory://", worker=None)
    app.include(tasks.registry)
    async with app:
        handle = await tasks.add.aenqueue(1, 2)
        async with Worker(app):
            with pytest.raises(TaskFailed, match="a bug in the worker") as caught:
                await handle.aresult(timeout=10)
    assert caught.value.type == "WorkerError"


async def test_a_result_that_cannot_be_read_back_from_its_process_fails_the_job() -> None:
    app = App("memory://", worker=None)
    app.include(tasks.registry)
    async with app:
        unreadable = await tasks.unreadable_result.aenqueue()
        after = await tasks.process_pid.aenqueue()
        async with Worker(app, concurrency=1, shutdown_grace=0.1):
            with pytest.raises(TaskFailed) as caught:
                await unreadable.aresult(timeout=10)
            assert caught.value.type == "UnreadableReply"
            assert "could not be read back" in caught.value.remote_message
            assert "TypeError" in caught.value.remote_message
            assert "missing 1 required positional argument" in caught.value.remote_message
            # the process was given up, not its worker: the next job runs in a new one
            assert await after.aresult(timeout=20) != os.getpid()


@pytest.mark.parametrize("pool", POOLS)
async def test_cancel_a_running_cooperative_job(app: App, pool: Pool) -> None:
    spin = app.task(name="spin")(tasks.wait_until_cancelled)
    handle = await spin.aenqueue(60.0)
    async with Worker(app, pool=pool, cancel_grace=5.0):
        await started(handle)
        await handle.acancel()
        assert handle.state is JobState.RUNNING and handle.job.cancel_requested
        with pytest.raises(JobCancelled):
            await handle.aresult(timeout=30)
    assert handle.job.state is JobState.CANCELLED


@pytest.mark.parametrize("pool", ["asyncio", "process"])
async def test_cancel_a_running_job_that_does_not_cooperate(app: App, pool: Pool) -> None:
    # an async task is cancelled; a process is terminated after the grace period
    sleeper = app.task(name="sleeper")(
        tasks.async_sleep if pool == "asyncio" else tasks.ignore_cancel
    )
    handle = await sleeper.aenqueue(60.0)
    async with Worker(app, pool=pool, cancel_grace=0.2):
        await started(handle)
        await handle.acancel()
        with pytest.raises(JobCancelled):
            await handle.aresult(timeout=30)
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=30) == 2


@pytest.mark.parametrize("pool", POOLS)
async def test_timeout_stops_the_attempt(app: App, pool: Pool) -> None:
    body: Callable[[float], object] = (
        tasks.async_sleep if pool == "asyncio" else tasks.wait_until_cancelled
    )
    if pool == "process":
        body = tasks.ignore_cancel
    slow = app.task(name="slow", timeout=0.3, retries=1, backoff=0.01)(body)
    handle = await slow.aenqueue(60.0)
    await Worker(app, pool=pool, cancel_grace=0.2).run_until_idle(timeout=60)
    with pytest.raises(TaskFailed, match=r"did not finish within 0\.3 seconds") as caught:
        await handle.aresult(timeout=1)
    assert caught.value.type == "Timeout"
    assert handle.job.attempt == 2  # a timeout is retried like any failure


def _sum(a: int, b: int) -> int:
    return a + b


async def test_a_thread_left_running_after_its_timeout_delays_the_next_call_not_its_clock(
    app: App,
) -> None:
    # the abandoned thread keeps its pool thread: the next call waited for one while its own
    # timeout ran, and failed with Timeout before it started (then ran anyway, later)
    hog = app.task(name="hog", timeout=0.2, retries=0)(tasks.ignore_cancel)
    quick = app.task(name="quick", timeout=1.0, retries=0)(_sum)
    hogging = await hog.aenqueue(1.5)
    after = await quick.aenqueue(1, 2)
    await Worker(app, concurrency=1, pool="thread").run_until_idle(timeout=60)
    with pytest.raises(TaskFailed, match="did not finish"):
        await hogging.aresult(timeout=1)
    assert await after.aresult(timeout=5) == 3


@pytest.mark.parametrize("pool", POOLS)
async def test_graceful_shutdown_gives_unfinished_jobs_back(app: App, pool: Pool) -> None:
    spin = app.task(name="spin")(tasks.wait_until_cancelled)
    handle = await spin.aenqueue(60.0)
    worker = Worker(app, pool=pool, shutdown_grace=0.1, cancel_grace=0.2)
    await worker.start()
    await started(handle)
    await worker.stop()
    await handle.arefresh()
    assert handle.state is JobState.QUEUED and handle.job.attempt == 0


async def test_shutdown_lets_short_jobs_finish(app: App) -> None:
    handles = [await tasks.async_add.aenqueue(index, 1) for index in range(5)]
    worker = Worker(app, concurrency=5, pool="asyncio")
    await worker.start()
    await handles[0].aresult(timeout=10)
    await worker.stop()
    for index, handle in enumerate(handles):
        assert await handle.aresult(timeout=10) == index + 1


async def test_process_pool_refuses_functions_it_cannot_import(app: App) -> None:
    @app.task(name="local")
    def local() -> int:
        return 1

    handle = await local.aenqueue()
    await Worker(app, pool="process").run_until_idle(timeout=30)
    with pytest.raises(TaskFailed, match="defined inside a function"):
        await handle.aresult(timeout=1)


async def test_a_task_can_ask_for_a_process_in_any_pool(app: App) -> None:
    in_process = await tasks.process_pid.aenqueue()
    in_thread = await tasks.add.aenqueue(1, 1)
    await Worker(app, pool="thread").run_until_idle(timeout=60)
    assert await in_process.aresult(timeout=1) != os.getpid()
    assert await in_thread.aresult(timeout=1) == 2


def test_current_job_outside_a_task_is_an_error() -> None:
    with pytest.raises(Exception, match="only available inside a running task"):
        current_job()


def test_a_task_in_a_process_of_a_local_app_cannot_enqueue_into_a_store_of_its_own() -> None:
    # the task's process started an app of its own on a new, private memory store: the job id
    # it returned named nothing the app knew (sqlite: the task failed on the file's lock)
    from tests.sdk._process_enqueuer import app, enqueue_double

    with app:
        handle = enqueue_double.enqueue(21)
        with pytest.raises(TaskFailed, match="a process of the process pool"):
            handle.result(timeout=60)


async def test_a_sqlite_app_closes_while_abandoned_sync_calls_hold_the_default_executor(
    tmp_path: Path,
) -> None:
    # the asyncio pool runs sync tasks in the loop's default executor; two of them fill it
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
    release = threading.Event()
    app = App(
        f"sqlite:///{tmp_path / 'shoal.db'}",
        worker=WorkerConfig(pool="asyncio", concurrency=2, shutdown_grace=0.2),
    )

    @app.task(name="block")
    def block() -> None:
        release.wait(10)

    try:
        async with app:
            handles = [await block.aenqueue() for _ in range(2)]
            for handle in handles:
                await started_running(handle)
            began = time.monotonic()
        # the store closed on threads of its own, not behind the calls the worker gave up on
        assert time.monotonic() - began < 2.0
    finally:
        release.set()


async def started_running(handle: JobHandle[None]) -> None:
    async with asyncio.timeout(10):
        while (await handle.arefresh()).state is not JobState.RUNNING:
            await asyncio.sleep(0.01)
