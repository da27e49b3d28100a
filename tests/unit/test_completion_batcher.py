"""The PostgreSQL store's group commit of completions, with the statement replaced by a real
function over a dict of rows: no completion may wait for ever, whatever the interleaving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from shoal.core.errors import LeaseLost
from shoal.core.model import LeaseRef
from shoal.stores.postgres._batch import CompletionBatcher
from shoal.stores.postgres._rows import JOB_COLUMNS, job_values
from shoal.testing._jobs import make_job


class _Rows:
    """Running jobs by id; `run` completes those whose token matches, like COMPLETE_MANY."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.statements = 0

    def add(self, job_id: str) -> LeaseRef:
        self.tokens[job_id] = f"t-{job_id}"
        return LeaseRef(job_id, self.tokens[job_id])

    async def run(self, args: Sequence[object]) -> list[dict[str, Any]]:
        ids, tokens, _results, _nows = args
        assert isinstance(ids, list) and isinstance(tokens, list)
        self.statements += 1
        await asyncio.sleep(0)  # the round trip: other callers run meanwhile
        rows = []
        for job_id, token in zip(ids, tokens, strict=True):
            if self.tokens.get(job_id) == token:
                del self.tokens[job_id]
                rows.append(_row(job_id))
        return rows


def _row(job_id: str) -> dict[str, Any]:
    """The row `to_job` reads, as PostgreSQL returns it."""
    return dict(zip(JOB_COLUMNS, job_values(make_job(id=job_id)), strict=True))


async def test_a_completion_made_as_the_writers_finish_is_not_stranded() -> None:
    """Two writes answered in one loop turn: both writers end their loops (nothing queued) and
    wake their callers, but a task's done callback runs a turn later, so when the first caller
    completes again at once both writers still count as in flight. Its completion must start a
    writer of its own, not wait in the queue for one that will never come (CI hung so, once).
    """
    loop = asyncio.get_running_loop()
    gates: list[asyncio.Future[None]] = []
    rows = _Rows()

    async def run(args: Sequence[object]) -> list[dict[str, Any]]:
        gate = loop.create_future()
        gates.append(gate)
        await gate
        return await rows.run(args)

    batcher = CompletionBatcher(run)  # type: ignore[arg-type]

    async def first() -> None:
        await batcher.complete(rows.add("j1"), None, 0.0)
        await batcher.complete(rows.add("j3"), None, 0.0)  # at once, nothing awaited between

    callers = [asyncio.create_task(first())]
    await asyncio.sleep(0)
    callers.append(asyncio.create_task(batcher.complete(rows.add("j2"), None, 0.0)))
    while len(gates) < 2:
        await asyncio.sleep(0)
    for gate in gates:  # both answers in one loop turn
        gate.set_result(None)
    async with asyncio.timeout(2):
        while not all(caller.done() for caller in callers):
            await asyncio.sleep(0.01)
            for gate in gates:  # a later write, if one starts, is answered at once
                if not gate.done():
                    gate.set_result(None)
    assert rows.tokens == {}


async def test_each_caller_gets_its_own_outcome() -> None:
    rows = _Rows()
    batcher = CompletionBatcher(rows.run)  # type: ignore[arg-type]
    held = rows.add("held")
    stale = LeaseRef("gone", "t-gone")
    done, lost = await asyncio.gather(
        batcher.complete(held, b"r", 0.0),
        batcher.complete(stale, None, 0.0),
        return_exceptions=True,
    )
    assert not isinstance(done, BaseException) and done.id == "held"
    assert isinstance(lost, LeaseLost)
    await batcher.wait_idle()
