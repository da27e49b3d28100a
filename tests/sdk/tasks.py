"""Tasks used by the SDK tests; a module (not a test file) so process-pool children import it."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
import threading
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pydantic

from shoal.sdk import NonRetryable, Retry, TaskRegistry, current_job

registry = TaskRegistry()

#: Task names in the order their jobs started (in-process pools only).
started: list[str] = []
_lock = threading.Lock()


def record(label: str) -> None:
    with _lock:
        started.append(label)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Order(pydantic.BaseModel):
    id: uuid.UUID
    amount: Decimal
    placed: datetime


@registry.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@registry.task(name="async_add")
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@registry.task(name="typed")
def typed(point: Point, order: Order, color: Color, when: datetime, ids: list[uuid.UUID]) -> Order:
    assert isinstance(point, Point) and isinstance(order, Order) and isinstance(color, Color)
    assert isinstance(when, datetime) and all(isinstance(item, uuid.UUID) for item in ids)
    return order.model_copy(
        update={"amount": order.amount * point.x, "placed": when + timedelta(days=1)}
    )


@registry.task(name="shift")
def shift(point: Point, by: int = 1) -> Point:
    return Point(point.x + by, point.y + by)


@registry.task(name="boom", retries=0)
def boom(message: str) -> None:
    raise ValueError(message)


@registry.task(name="flaky", retries=3, backoff=0.05)
def flaky(succeed_on: int) -> int:
    attempt = current_job().attempt
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt


@registry.task(name="asks_retry", retries=2)
def asks_retry() -> int:
    if current_job().attempt == 1:
        raise Retry(delay=0.05)
    return current_job().attempt


@registry.task(name="fatal", retries=5)
def fatal() -> None:
    raise NonRetryable("give up at once")


@registry.task(name="label")
def label(name: str) -> str:
    record(name)
    return name


@registry.task(name="progress")
def progress() -> str:
    current_job().progress(0.5)
    current_job().heartbeat()
    return current_job().id


@registry.task(name="progress_storm")
def progress_storm(count: int) -> str:
    """Report progress `count` times in a tight loop, then 0.75, and run on a while."""
    job = current_job()
    for i in range(count):
        job.progress(i / count)
    job.progress(0.75)
    time.sleep(0.5)
    return job.id


@registry.task(name="progress_then_fail", retries=0)
def progress_then_fail() -> None:
    """Report progress twice in a row, then fail: the second value is still waiting to be
    sent (a job sends at most one every `PROGRESS_EVERY`) when the job ends.
    """
    job = current_job()
    job.progress(0.1)
    job.progress(0.6)
    raise ValueError("failed at 60%")


@registry.task(name="progress_then_fail_async", retries=0)
async def progress_then_fail_async(pause: float) -> None:
    """`progress_then_fail` as a coroutine: its reports come from the worker's own loop."""
    job = current_job()
    job.progress(0.1)
    await asyncio.sleep(pause)
    job.progress(0.6)
    raise ValueError("failed at 60%")


def wait_until_cancelled(limit: float) -> str:
    """Mark progress, then spin until cancelled; the plain function runs in every pool."""
    job = current_job()
    job.progress(0.1)
    deadline = time.monotonic() + limit
    while not job.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    job.raise_if_cancelled()
    return "finished"


def ignore_cancel(seconds: float) -> str:
    """Mark progress, then sleep without looking at the flag (a process must be terminated)."""
    current_job().progress(0.1)
    time.sleep(seconds)
    return "slept"


async def async_sleep(seconds: float) -> str:
    current_job().progress(0.1)
    await asyncio.sleep(seconds)
    return "slept"


@registry.task(name="process_pid", pool="process")
def process_pid() -> int:
    """Declared CPU-bound: runs in a task process whatever the worker's pool."""
    return os.getpid()


@registry.task(name="big_result", retries=0)
def big_result(size: int) -> str:
    """A result of `size` characters: the payload limit keeps the size out of the arguments."""
    return "x" * size


@registry.task(name="big_error", retries=0)
def big_error(size: int) -> None:
    raise ValueError("x" * size)


@registry.task(name="retry_after", retries=2)
def retry_after(delay: float) -> None:
    raise Retry(delay=delay)


@registry.task(name="retry_after_unchecked", retries=2)
def retry_after_unchecked(delay: float) -> None:
    """Sets the delay past Retry's check, for an outcome the service refuses."""
    retry = Retry()
    retry.delay = delay
    raise retry


class Unspeakable(Exception):
    """An exception whose str() raises."""

    def __str__(self) -> str:
        raise RuntimeError("no words")


@registry.task(name="unspeakable", retries=0)
def unspeakable() -> None:
    raise Unspeakable()


@registry.task(name="garbled", retries=0)
def garbled() -> None:
    raise ValueError("nul \x00, lone \udcff")


#: Set to end `hangs` (a test that starts it sets it when done).
RELEASE = threading.Event()


@registry.task(name="hangs", timeout=0.5, retries=0)
def hangs() -> None:
    RELEASE.wait(30)  # blocking, and never looking at current_job().cancelled


@registry.task(name="exits", retries=0)
def exits() -> None:
    raise SystemExit(2)  # what argparse and click raise on a bad command line


@registry.task(name="exits_async", retries=0)
async def exits_async() -> None:
    raise SystemExit(2)


@registry.task(name="unspeakable_async", retries=0)
async def unspeakable_async() -> None:
    raise Unspeakable()


class CodedError(Exception):
    """An exception with a required extra argument: it pickles, but does not unpickle."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@registry.task(name="unreadable_result", retries=0, pool="process")
def unreadable_result() -> dict[str, object]:
    return {"status": "partial", "error": CodedError(7, "disk full")}
