from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from shoal.core.errors import LeaseLost
from shoal.core.model import Job, LeaseRef
from shoal.stores.postgres._rows import to_job

#: Completions that arrive while earlier ones are being written go out together, up to this
#: many per statement; so under load one commit (one WAL flush) carries many jobs.
MAX_BATCH = 500
#: Statements in flight at once: the next batch gathers while these commit.
MAX_INFLIGHT = 2

COMPLETE_MANY = """
UPDATE shoal_jobs AS j
SET state = 'succeeded', result = c.result, finished_at = c.now, progress = 1.0,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL
FROM unnest($1::text[], $2::text[], $3::bytea[], $4::float8[]) AS c(id, token, result, now)
WHERE j.id = c.id AND j.state = 'running' AND j.lease_token = c.token
RETURNING j.*
"""


@dataclass(slots=True)
class _Pending:
    lease: LeaseRef
    result: bytes | None
    now: float
    future: asyncio.Future[Job]


class CompletionBatcher:
    """Group commit for `complete`: each call waits for its own outcome, but calls made while a
    write is in flight share the next statement. Each job's outcome is decided by its own row
    (its live token), exactly as one statement per job would; only the round trips are shared.
    """

    def __init__(self, run: Callable[[Sequence[object]], Awaitable[list[asyncpg.Record]]]) -> None:
        self._run = run
        self._queue: list[_Pending] = []
        self._inflight: set[asyncio.Task[None]] = set()
        # Writers still looping. Counted apart from `_inflight`, whose entries leave a loop turn
        # after their task ends: a completion queued in that turn found "enough writers" and
        # waited for ever (a CI hang).
        self._writers = 0

    async def complete(self, lease: LeaseRef, result: bytes | None, now: float) -> Job:
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(lease, result, now, future))
        if self._writers < MAX_INFLIGHT:
            self._writers += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return await future

    async def wait_idle(self) -> None:
        """Return when every write in flight has ended."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._write(self._take())
        finally:
            # No await between the empty queue seen above and this: a completion queued after
            # it starts a writer of its own.
            self._writers -= 1

    def _take(self) -> list[_Pending]:
        """The next batch, each job at most once: a second completion of one job waits for
        the next batch, where it finds the lease already spent.
        """
        batch: list[_Pending] = []
        later: list[_Pending] = []
        ids: set[str] = set()
        for index, pending in enumerate(self._queue):
            if len(batch) == MAX_BATCH:
                later += self._queue[index:]
                break
            if pending.lease.job_id in ids:
                later.append(pending)
            else:
                ids.add(pending.lease.job_id)
                batch.append(pending)
        self._queue = later
        return batch

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            rows = await self._run(
                (
                    [p.lease.job_id for p in batch],
                    [p.lease.token for p in batch],
                    [p.result for p in batch],
                    [p.now for p in batch],
                )
            )
        except BaseException as exc:  # every caller gets the statement's error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        done = {row["id"]: to_job(row) for row in rows}
        for pending in batch:
            job = done.get(pending.lease.job_id)
            if pending.future.done():
                continue
            if job is None:
                pending.future.set_exception(
                    LeaseLost(f"lease on job {pending.lease.job_id} is not held")
                )
            else:
                pending.future.set_result(job)
