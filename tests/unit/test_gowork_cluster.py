"""go-work's membership over the memory store: members that fall silent are forgotten."""

from __future__ import annotations

import asyncio

import pytest

from shoal.core.clock import ManualClock
from shoal.core.errors import StorageError
from shoal.core.service import QueueService
from shoal.protocols.grpc import _gowork_cluster
from shoal.protocols.grpc.gowork import GoWorkCluster


async def _run_duty(cluster: GoWorkCluster) -> None:
    """Let the push duty start (it sweeps then) and stop it."""
    runner = asyncio.create_task(cluster.run())
    await asyncio.sleep(0.1)
    cluster.stop()
    await runner
    cluster._stopping = False


async def test_members_that_died_without_leaving_are_forgotten(
    memory_service: QueueService, manual_clock: ManualClock
) -> None:
    cluster = GoWorkCluster(memory_service, heartbeat_timeout=30.0)
    for number in range(50):  # a go-work worker joins, beats once, and is killed
        await cluster.join(f"m{number}", f"127.0.0.1:{20000 + number}")
        await cluster.heartbeat(f"m{number}", "busy")
    await cluster.join("never-beat", "127.0.0.1:1")
    await cluster.join("alive", "127.0.0.1:2")
    manual_clock.advance(45)
    # past one timeout a silent member has left, as go-work shows it; a heartbeat brings it back
    await cluster.heartbeat("alive", "busy")
    await cluster.heartbeat("m0", "busy")  # busy: the duty pushes nothing (no claim waits)
    await _run_duty(cluster)
    assert len(cluster.members) == 52
    assert cluster.members["m1"].describe(manual_clock.now(), 30.0) == "left, unknown"
    manual_clock.advance(30)  # past two: removed as by Leave, record and all
    await cluster.heartbeat("alive", "busy")
    await _run_duty(cluster)
    assert sorted(cluster.members) == ["alive", "m0"]
    workers = await memory_service.list_workers()
    assert sorted(worker.id for worker in workers) == ["alive", "m0"]


async def test_a_storage_error_does_not_end_the_push_duty(
    memory_service: QueueService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the duty had no guard: one failed claim or sweep (a database restarting) ended go-work
    # dispatch for good, with nothing to start it again
    monkeypatch.setattr(_gowork_cluster, "_RETRY_AFTER", 0.01)
    cluster = GoWorkCluster(memory_service, heartbeat_timeout=0.05)
    sweeps = 0
    sweep = cluster._sweep

    async def flaky() -> None:
        nonlocal sweeps
        sweeps += 1
        if sweeps == 1:
            raise StorageError("sqlite: disk I/O error")
        await sweep()

    cluster._sweep = flaky  # type: ignore[method-assign]
    runner = asyncio.create_task(cluster.run())
    await asyncio.sleep(0.3)
    assert not runner.done() and sweeps >= 2
    cluster.stop()
    await runner
