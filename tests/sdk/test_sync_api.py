"""The blocking facade: the same async implementation, run on the app's private loop thread;
and local mode's own in-process worker.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from shoal.sdk import App, JobState, ShoalError, TaskFailed, WorkerConfig


def test_nothing_happens_before_first_use() -> None:
    app = App("memory://")

    @app.task
    def double(value: int) -> int:
        return value * 2

    assert app.home is None
    with pytest.raises(ShoalError, match="not started"):
        _ = app.transport
    app.shutdown()  # closing an app that never started is fine


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_blocking_calls_with_the_in_process_worker(backend: str, tmp_path: Path) -> None:
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'sync.db'}"
    app = App(url, worker=WorkerConfig(concurrency=2, pool="thread"))

    @app.task(retries=0)
    def divide(a: float, b: float) -> float:
        return a / b

    with app:
        assert threading.current_thread() is threading.main_thread()
        handle = divide.enqueue(1, 4)
        assert handle.result(timeout=10) == 0.25
        assert handle.refresh().state is JobState.SUCCEEDED
        failing = divide.enqueue(1, 0)
        with pytest.raises(TaskFailed, match="ZeroDivisionError: float division by zero"):
            failing.result(timeout=10)
        many = divide.enqueue_many([(1, 2), (3, 4)])
        assert [item.result(timeout=10) for item in many] == [0.5, 0.75]
        waiting = divide.options(delay=60).enqueue(1, 1)
        assert waiting.cancel().state is JobState.CANCELLED
    assert app.home is None


def test_first_blocking_use_starts_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_URL", "memory://")
    app = App()

    @app.task
    async def greet(name: str) -> str:
        return f"hello {name}"

    try:
        assert greet.enqueue("shoal").result(timeout=10) == "hello shoal"
        assert app.url == "memory://"
    finally:
        app.shutdown()


async def test_blocking_call_inside_the_apps_loop_is_refused() -> None:
    app = App("memory://", worker=None)

    @app.task
    def one() -> int:
        return 1

    async with app:
        with pytest.raises(ShoalError, match="would deadlock"):
            one.enqueue()
        # from another thread the blocking API works against this loop
        handle = await asyncio.to_thread(one.enqueue)
        assert handle.state is JobState.QUEUED


async def test_async_calls_from_another_loop_hop_to_the_home_loop() -> None:
    app = App("memory://")

    @app.task
    def triple(value: int) -> int:
        return value * 3

    with app:  # runs on the private loop thread; this test's loop is another one
        handle = await triple.aenqueue(3)
        assert await handle.aresult(timeout=10) == 9


async def test_concurrent_first_uses_share_one_start() -> None:
    app = App("memory://", worker=None)

    @app.task
    def one() -> int:
        return 1

    first, second = await asyncio.gather(one.aenqueue(), one.aenqueue())
    try:
        stats = await app.transport.stats(app.namespace, None)
        assert stats.total == 2  # both jobs landed in the same (single) service
        assert first.id != second.id
    finally:
        await app.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_app_whose_loop_closed_without_close_starts_again(backend: str, tmp_path: Path) -> None:
    # the end of an asyncio.run (a test's loop) left the app bound to a closed loop: every
    # later use, and shutdown() itself, raised "Event loop is closed"; on SQLite the store
    # left behind kept the file's lock, and the app could not open it again
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'app.db'}"
    app = App(url)

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    async def use() -> int:
        return await (await add.aenqueue(1, 2)).aresult(timeout=10)

    assert asyncio.run(use()) == 3
    assert asyncio.run(use()) == 3
    assert add.enqueue(2, 2).result(timeout=10) == 4
    app.shutdown()
