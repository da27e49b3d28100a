"""A worker's slots bound the calls running, not the outcomes on their way to the service."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.core.model import LeaseRef
from shoal.sdk import App, Worker


class _SlowAcks:
    """A worker session whose completions wait for the test to let them through."""

    def __init__(self, session: Any, gate: asyncio.Event) -> None:
        self._session = session
        self._gate = gate
        self.waiting = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def complete(self, lease: LeaseRef, result: bytes | None) -> None:
        self.waiting += 1
        await self._gate.wait()
        await self._session.complete(lease, result)


async def test_a_slot_frees_when_the_call_ends_not_when_its_outcome_is_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App("memory://", namespace="slots", worker=None)
    ran: list[int] = []

    @app.task(name="step")
    async def step(n: int) -> None:
        ran.append(n)

    gate = asyncio.Event()
    sessions: list[_SlowAcks] = []
    async with app:
        connect = app.transport.connect_worker

        async def slow_connect(*args: Any, **kwargs: Any) -> Any:
            sessions.append(_SlowAcks(await connect(*args, **kwargs), gate))
            return sessions[-1]

        monkeypatch.setattr(app.transport, "connect_worker", slow_connect)
        handles = [await step.aenqueue(n) for n in range(3)]
        worker = Worker(app, concurrency=1)
        await worker.start()
        try:
            async with asyncio.timeout(10):
                while len(ran) < 3:  # each call ran while the ones before it awaited their ack
                    await asyncio.sleep(0.01)
            assert sessions[0].waiting == 3 and worker.running == 3  # leases still held
            gate.set()
            for handle in handles:
                assert (await handle.aresult(timeout=10)) is None
        finally:
            gate.set()
            await worker.stop()
    assert ran == [0, 1, 2]
