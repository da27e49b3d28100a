"""The SDK in every mode (`app_url`): enqueue, typed results, errors, retries, delays,
priorities, idempotency, bad input, unknown tasks, events and callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shoal.core.errors import InvalidArgument
from shoal.core.events import Event
from shoal.core.retry import RetryPolicy
from shoal.core.validation import EnqueueRequest
from shoal.sdk import (
    App,
    JobCancelled,
    JobHandle,
    JobState,
    ResultTimeout,
    Retry,
    ShoalError,
    TaskFailed,
    Worker,
)
from tests.sdk import tasks


async def test_enqueue_and_typed_result(app: App) -> None:
    handle = await tasks.add.aenqueue(2, 3)
    assert handle.state is JobState.QUEUED and handle.created
    async with Worker(app, concurrency=2):
        assert await handle.aresult(timeout=10) == 5
        assert await (await tasks.async_add.aenqueue(a=1, b=1)).aresult(timeout=10) == 2
    assert handle.job.state is JobState.SUCCEEDED  # as last seen, by aresult


async def test_arguments_and_results_keep_their_types(app: App) -> None:
    order = tasks.Order(id=uuid.uuid4(), amount=Decimal("2.50"), placed=datetime.now(UTC))
    when = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    ids = [uuid.uuid4(), uuid.uuid4()]
    handle = await tasks.typed.aenqueue(tasks.Point(3, 4), order, tasks.Color.BLUE, when, ids)
    moved = await tasks.shift.aenqueue(tasks.Point(1, 2), by=2)
    async with Worker(app):
        result = await handle.aresult(timeout=10)
        assert await moved.aresult(timeout=10) == tasks.Point(3, 4)
    assert isinstance(result, tasks.Order)
    assert result.amount == Decimal("7.50") and result.id == order.id
    assert result.placed == datetime(2030, 1, 3, 3, 4, tzinfo=UTC)


async def test_remote_error_carries_type_message_and_traceback(app: App) -> None:
    handle = await tasks.boom.aenqueue("bad things")
    async with Worker(app):
        with pytest.raises(TaskFailed) as caught:
            await handle.aresult(timeout=10)
    assert caught.value.type == "ValueError"
    assert caught.value.remote_message == "bad things"
    assert "raise ValueError(message)" in caught.value.traceback
    assert isinstance(caught.value, ShoalError)
    assert handle.state is JobState.FAILED


async def test_retries_with_backoff_until_success(app: App) -> None:
    handle = await tasks.flaky.aenqueue(succeed_on=3)
    async with Worker(app):
        assert await handle.aresult(timeout=10) == 3
    job = handle.job
    assert job.attempt == 3 and job.max_attempts == 4
    assert job.started_at is not None and job.started_at - job.created_at >= 0.1  # 2 backoffs


async def test_retries_exhausted_fail_the_job(app: App) -> None:
    handle = await tasks.flaky.options().aenqueue(succeed_on=10)
    async with Worker(app):
        with pytest.raises(TaskFailed, match="attempt 4 failed"):
            await handle.aresult(timeout=10)
    assert handle.job.attempt == 4


async def test_retry_request_and_non_retryable_error(app: App) -> None:
    again = await tasks.asks_retry.aenqueue()
    fatal = await tasks.fatal.aenqueue()
    async with Worker(app):
        assert await again.aresult(timeout=10) == 2
        with pytest.raises(TaskFailed, match="give up at once"):
            await fatal.aresult(timeout=10)
    assert fatal.job.attempt == 1 and fatal.job.error is not None
    assert not fatal.job.error.retryable


async def test_a_retry_delay_out_of_range_fails_the_job_naming_delay(app: App) -> None:
    handle = await tasks.retry_after.aenqueue(-1.0)
    async with Worker(app):
        with pytest.raises(TaskFailed, match="delay: must be from 0 to") as caught:
            await handle.aresult(timeout=10)
    assert caught.value.type == "InvalidArgument" and handle.job.attempt == 1


@pytest.mark.parametrize("delay", [-1.0, math.nan, math.inf, 2e9, True])
def test_retry_refuses_a_delay_out_of_range(delay: float) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Retry(delay=delay)
    assert caught.value.field == "delay"


async def test_an_outcome_the_service_refuses_fails_the_job(app: App) -> None:
    handle = await tasks.retry_after_unchecked.aenqueue(-1.0)
    async with Worker(app):
        with pytest.raises(TaskFailed, match="refused the outcome: retry_delay") as caught:
            await handle.aresult(timeout=10)
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=10) == 2
    assert caught.value.type == "InvalidArgument" and handle.job.attempt == 1


async def test_options_change_retries_and_backoff(app: App) -> None:
    again = await tasks.boom.options(retries=2, backoff=0.01).aenqueue("again")
    once = await tasks.flaky.options(retries=0).aenqueue(2)
    async with Worker(app):
        for handle in (again, once):
            with pytest.raises(TaskFailed):
                await handle.aresult(timeout=10)
    assert (again.job.attempt, again.job.max_attempts) == (3, 3)
    assert again.job.backoff.startswith("fixed")
    assert (once.job.attempt, once.job.max_attempts) == (1, 1)


@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy.fixed(0),  # retry at once
        RetryPolicy(base=0, factor=3, cap=0, jitter=0),
        RetryPolicy(base=0.25, factor=1.5, cap=0.123456789, jitter=0),  # more than 6 digits
    ],
)
async def test_a_backoff_is_stored_as_given(app: App, policy: RetryPolicy) -> None:
    # gRPC read a 0 base or cap as "unset" (proto3): backoff=0 retried after 1 s, up to 300,
    # and 6 significant digits were kept of each number
    handle = await tasks.add.options(backoff=policy).aenqueue(1, 1)
    assert RetryPolicy.parse(handle.job.backoff) == policy


async def test_delay_and_run_at(app: App) -> None:
    delayed = await tasks.add.options(delay=0.3).aenqueue(1, 1)
    later = datetime.fromtimestamp(delayed.job.created_at + 0.3, UTC)
    at = await tasks.add.options(run_at=later).aenqueue(2, 2)
    assert delayed.state is JobState.SCHEDULED and at.state is JobState.SCHEDULED
    async with Worker(app):
        assert await delayed.aresult(timeout=10) == 2
        assert await at.aresult(timeout=10) == 4
    assert delayed.job.run_at >= delayed.job.created_at + 0.3 - 1e-6
    for handle in (delayed, at):
        # never before its run_at (`at`'s run_at counts from the first job's creation)
        assert handle.job.started_at is not None
        assert handle.job.started_at >= handle.job.run_at - 1e-6


async def test_priorities_decide_the_order(app: App) -> None:
    for name, priority in [("low", 0), ("high", 10), ("mid", 5), ("urgent", 99)]:
        await tasks.label.options(priority=priority).aenqueue(name)
    await Worker(app, concurrency=1).run_until_idle(timeout=20)
    assert tasks.started == ["urgent", "high", "mid", "low"]


async def test_idempotency_key_returns_the_existing_job(app: App) -> None:
    first = await tasks.add.options(idempotency_key="order-7").aenqueue(1, 2)
    second = await tasks.add.options(idempotency_key="order-7").aenqueue(5, 5)
    assert first.created and not second.created and first.id == second.id
    await Worker(app).run_until_idle(timeout=20)
    assert await second.aresult(timeout=1) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", 2**40),
        ("priority", 1.5),
        ("priority", True),
        ("timeout", "5"),
        ("timeout", True),  # protobuf took True for a double: 1.0 over gRPC
        ("delay", True),
    ],
)
async def test_bad_option_types_raise_invalid_argument_in_every_mode(
    app: App, field: str, value: object
) -> None:
    variant = tasks.add.options(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as caught:
        await variant.aenqueue(1, 2)
    assert caught.value.field == field


async def test_enqueue_many_in_one_call(app: App) -> None:
    handles = await tasks.add.aenqueue_many([(1, 1), tasks.add.call(2, 2), (3, 3)])
    mixed = await app.aenqueue_many([tasks.add.call(5, 5), tasks.label.call("x")])
    await Worker(app).run_until_idle(timeout=20)
    assert [await handle.aresult(timeout=1) for handle in handles] == [2, 4, 6]
    assert [await handle.aresult(timeout=1) for handle in mixed] == [10, "x"]


async def test_bad_arguments_fail_once_naming_the_parameter(app: App) -> None:
    handle = await tasks.add.aenqueue("three", 4)  # type: ignore[arg-type]
    bad_point = await tasks.shift.aenqueue({"x": 1})  # type: ignore[arg-type]
    await Worker(app).run_until_idle(timeout=20)
    with pytest.raises(TaskFailed, match=r"a: cannot convert 'three'") as caught:
        await handle.aresult(timeout=1)
    assert caught.value.type == "InvalidArgument"
    assert handle.job.attempt == 1 and handle.job.error is not None
    assert not handle.job.error.retryable
    with pytest.raises(TaskFailed, match=r"point: .* at y"):
        await bad_point.aresult(timeout=1)


async def test_calls_that_do_not_fit_the_signature_are_refused_at_enqueue(app: App) -> None:
    with pytest.raises(ShoalError, match="missing a required argument"):
        await tasks.add.aenqueue(1)  # type: ignore[call-arg]
    with pytest.raises(ShoalError, match="cannot serialize"):
        await tasks.label.aenqueue(object())  # type: ignore[arg-type]


async def test_a_job_of_a_task_the_app_lacks_waits_for_a_worker_that_has_it(app: App) -> None:
    # it failed for good (UnknownTask) on the first worker that took it: a job of another
    # app sharing the queue, or of a task a rolling deploy adds, was lost
    request = EnqueueRequest(
        task="nobody.knows", payload=b'{"args": [], "kwargs": {}}', namespace=app.namespace
    )
    [enqueued] = await app.transport.enqueue([request])
    ghost: JobHandle[object] = app.handle(enqueued.job.id)
    async with Worker(app):
        assert await (await tasks.add.aenqueue(1, 1)).aresult(timeout=10) == 2
        assert (await ghost.arefresh()).state is JobState.QUEUED


async def test_cancel_a_queued_job(app: App) -> None:
    handle = await tasks.add.options(delay=60).aenqueue(1, 1)
    queued = await tasks.add.aenqueue(2, 2)
    for item in (handle, queued):
        await item.acancel()
        assert item.state is JobState.CANCELLED
        with pytest.raises(JobCancelled):
            await item.aresult(timeout=1)


async def test_result_timeout_and_refresh(app: App) -> None:
    handle = await tasks.add.aenqueue(1, 1)
    with pytest.raises(ResultTimeout):
        await handle.aresult(timeout=0.05)
    same = app.handle(handle.id, tasks.add)
    await same.arefresh()
    assert same.state is JobState.QUEUED


async def test_progress_and_current_job(app: App) -> None:
    handle = await tasks.progress.aenqueue()
    await Worker(app).run_until_idle(timeout=20)
    assert await handle.aresult(timeout=1) == handle.id
    assert handle.progress == 1.0  # completion sets it


async def test_events_stream_the_lifecycle(app: App) -> None:
    seen: list[Event] = []
    watched: set[str] = set()
    listening = asyncio.Event()

    async def listen() -> None:
        async for event in app.events():
            listening.set()
            seen.append(event)
            if event.kind == "job.succeeded" and event.job_id in watched:
                return

    listener = asyncio.create_task(listen())
    # a subscription over the network starts at some point: enqueue markers until it has
    while not listening.is_set():
        await tasks.label.options(delay=3600).aenqueue("marker")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listening.wait(), 0.2)
    handle = await tasks.add.aenqueue(1, 2)
    watched.add(handle.id)
    async with Worker(app):
        await asyncio.wait_for(listener, 10)
    kinds = [event.kind for event in seen if event.job_id == handle.id]
    assert kinds == ["job.enqueued", "job.claimed", "job.succeeded"]
    assert all(event.namespace == app.namespace for event in seen)


async def test_success_and_failure_callbacks(app: App) -> None:
    results: asyncio.Queue[object] = asyncio.Queue()
    ok = await tasks.add.aenqueue(20, 22)
    ok.on_success(results.put_nowait)
    bad = await tasks.boom.aenqueue("no")
    bad.on_failure(results.put_nowait)
    async with Worker(app):
        first = await asyncio.wait_for(results.get(), 10)
        second = await asyncio.wait_for(results.get(), 10)
    outcomes = sorted([first, second], key=lambda value: isinstance(value, TaskFailed))
    assert outcomes[0] == 42
    assert isinstance(outcomes[1], TaskFailed) and outcomes[1].type == "ValueError"
