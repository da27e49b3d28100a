from __future__ import annotations

import asyncio
import uuid

import pytest

import shoal
from shoal.core.errors import InvalidArgument, LeaseLost, NotFound, ShoalError, error_from_code
from shoal.core.events import Event, EventBus
from shoal.core.ids import new_job_id, new_job_ids, uuid7
from shoal.core.wakeup import ReadySignal


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(value.version == 7 for value in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert uuid.UUID(new_job_id()).version == 7


def test_errors_have_stable_codes_and_round_trip() -> None:
    assert LeaseLost().code == "lease_lost" and NotFound("x").message == "x"
    assert "stale" in LeaseLost().message
    rebuilt = error_from_code("invalid_argument", "queue: must be a non-empty string", "queue")
    assert isinstance(rebuilt, InvalidArgument) and rebuilt.field == "queue"
    assert str(rebuilt) == "queue: must be a non-empty string"
    assert isinstance(error_from_code("lease_lost", "m"), LeaseLost)
    assert type(error_from_code("something_new", "m")) is ShoalError


def test_public_api_is_pinned() -> None:
    assert shoal.__all__ == [
        "ConfigError",
        "Conflict",
        "InvalidArgument",
        "Job",
        "JobState",
        "LeaseLost",
        "NotFound",
        "PermissionDenied",
        "ResourceExhausted",
        "ShoalError",
        "StorageError",
        "Unauthenticated",
        "Unavailable",
        "UnknownTask",
        "__version__",
    ]


async def test_event_bus_filters_and_drops_oldest_when_full() -> None:
    bus = EventBus()
    subscription = bus.subscribe(lambda event: event.kind.startswith("job."), capacity=2)
    for n in range(3):
        bus.publish(Event(f"job.{n}", "default", float(n)))
    bus.publish(Event("worker.joined", "default", 9.0))
    assert subscription.dropped == 1
    assert [(await subscription.next(0)).kind for _ in range(2)] == ["job.1", "job.2"]  # type: ignore[union-attr]
    assert await subscription.next(0.01) is None
    subscription.close()
    assert not bus.has_subscribers


async def test_event_subscription_iterates_until_closed() -> None:
    bus = EventBus()
    subscription = bus.subscribe()

    async def collect() -> list[str]:
        return [event.kind async for event in subscription]

    task = asyncio.create_task(collect())
    bus.publish(Event("a", "default", 0.0))
    await asyncio.sleep(0)
    subscription.close()
    assert await task == ["a"]


async def test_ready_signal_wakes_only_waiters_of_that_queue() -> None:
    signal = ReadySignal()
    waiter = asyncio.create_task(signal.wait("default", ["a", "b"], 5))
    other = asyncio.create_task(signal.wait("default", ["c"], 0.05))
    await asyncio.sleep(0)
    signal.notify("default", "b")
    assert await waiter is True
    assert await other is False


def test_job_ids_are_canonical_uuid_text() -> None:
    for _ in range(1000):
        job_id = new_job_id()
        assert str(uuid.UUID(job_id)) == job_id


def test_ids_made_in_bulk_are_canonical_distinct_and_in_order() -> None:
    # more than the random pool holds at once, and more than a millisecond's 4,096 counter
    # values, mixed with single ids: one sequence, strictly increasing
    made = [new_job_id(), *new_job_ids(6000), new_job_id(), *new_job_ids(1), *new_job_ids(0)]
    assert len(made) == 6003 and made == sorted(made) and len(set(made)) == len(made)
    assert all(str(uuid.UUID(job_id)) == job_id for job_id in made)
    assert all(uuid.UUID(job_id).version == 7 for job_id in made)
    randoms = {job_id[19:] for job_id in made}  # the variant and the 62 random bits
    assert len(randoms) == len(made)


def test_ids_keep_their_order_on_a_frozen_or_backward_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shoal.core import ids

    clock = [1_700_000_000_000 * 1_000_000]  # ns
    monkeypatch.setattr(ids.time, "time_ns", lambda: clock[0])
    monkeypatch.setattr(ids, "_last_ms", 0)  # as if no id was made yet (earlier tests did)
    frozen = ids.new_job_ids(10_000)  # more than one millisecond's counter
    clock[0] -= 5_000 * 1_000_000_000  # the clock goes back 5,000 s
    later = [ids.new_job_id(), *ids.new_job_ids(3)]
    made = frozen + later
    assert made == sorted(made) and len(set(made)) == len(made)
    millis = [uuid.UUID(job_id).int >> 80 for job_id in made]
    assert millis[0] == 1_700_000_000_000 and millis[-1] - millis[0] <= 3  # borrowed, no jump
    with pytest.raises(InvalidArgument, match="count: must be >= 0"):
        ids.new_job_ids(-1)


def test_ids_made_on_many_threads_are_distinct() -> None:
    import threading

    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        for count in range(1, 200):
            into.extend(new_job_ids(count % 7) if count % 2 else [new_job_id()])

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(mine == sorted(mine) for mine in made)  # each thread's in creation order
    every = [job_id for mine in made for job_id in mine]
    assert len(set(every)) == len(every)


def test_a_forked_child_makes_ids_of_its_own() -> None:
    import os

    from shoal.core import ids

    ids.new_job_id()  # the parent holds a block of random bits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: ids made now must not repeat the parent's
        os.close(read)
        os.write(write, "\n".join(ids.new_job_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    mine = {ids.new_job_id() for _ in range(50)}
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    assert len(theirs) == 50 and not mine & theirs
    assert {i[19:] for i in mine}.isdisjoint({i[19:] for i in theirs})  # random parts differ
