from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from shoal.core.errors import ConfigError, Unavailable
from shoal.core.events import Event
from shoal.core.model import (
    Job,
    JobError,
    JobPage,
    JobQuery,
    LeaseRef,
    QueueInfo,
    QueueStats,
)
from shoal.core.ports import (
    BroadcastListener,
    ClaimRequest,
    DueResult,
    Enqueued,
    HeartbeatResult,
    ReadyListener,
    Resumed,
    WorkerResume,
)
from shoal.stores.sqlite import _admin_ops as admin
from shoal.stores.sqlite import _job_ops as ops
from shoal.stores.sqlite import _leases as leases_ops
from shoal.stores.sqlite import _queries as queries
from shoal.stores.sqlite._blocking import off_loop
from shoal.stores.sqlite._checkpoints import WRITER_PAGES, Checkpointer
from shoal.stores.sqlite._connection import SYNCHRONOUS_MODES, FileLock, connect, migrate
from shoal.stores.sqlite._identity import IdentityMixin
from shoal.stores.sqlite._reader import Reader
from shoal.stores.sqlite._records import RecordsMixin
from shoal.stores.sqlite._rows import is_new, new_job_params, row_to_job, run_params
from shoal.stores.sqlite._threads import INLINE_ROWS, Op, Writer

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SqliteStore(RecordsMixin, IdentityMixin):
    """A store in one SQLite file, held exclusively by this process.

    WAL journal; one writer thread commits operations in groups (an operation is acknowledged
    only once its group's COMMIT returned) and one reader thread serves listings from the last
    committed state, so a big dashboard read never holds up writes. `synchronous="NORMAL"`
    (the default) survives the crash of the process at any moment; `"FULL"` also survives a
    power loss, at the cost of an fsync per group.
    """

    supports_notify = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        max_group: int = 2000,
        inline_writes: bool = False,
    ) -> None:
        """Remember the settings; `open()` does the I/O.

        Args:
            path: The database file; created with its schema if missing.
            synchronous: `NORMAL` or `FULL` (SQLite's `PRAGMA synchronous` in WAL mode).
            max_group: The most operations committed in one transaction.
            inline_writes: Let the event loop that opened the store run a few small
                operations itself, in one transaction, when the writer thread is idle: a lone
                caller then skips two thread wake-ups per write. Local mode and the server
                turn it on; the loop waits on SQLite only for a group of at most
                `INLINE_GROUP` operations that touch at most `INLINE_ROWS` rows in all,
                never for a sweep.
        """
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ConfigError(f"synchronous: must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if max_group < 1:
            raise ConfigError("max_group: must be at least 1")
        self.path = Path(path)
        self.synchronous = mode
        self._max_group = max_group
        self._inline = inline_writes
        self._lock = FileLock(self.path)
        self._writer: Writer | None = None
        self._reader: Reader | None = None
        self._checkpointer: Checkpointer | None = None
        # Touched only by operations, which run one group at a time (see Writer).
        self._leased: leases_ops.LeaseCache = {}
        self._complete_many = partial(leases_ops.complete_many, leased=self._leased)

    def migrate(self) -> list[str]:
        """Apply the migrations the file lacks, without opening the store; their names.

        It takes the file's lock for the time it runs, so it refuses to run beside a server.
        """
        self._lock.acquire()
        try:
            conn = connect(self.path, self.synchronous)
            try:
                return migrate(conn)
            finally:
                conn.close()
        finally:
            self._lock.release()

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """A store for `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`.

        As in SQLAlchemy, the path is what follows `sqlite:///`. Query parameters set options
        (`?synchronous=FULL`); an unknown one is a `ConfigError`.
        """
        parts = urlsplit(url)
        if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/"):
            raise ConfigError(f"not a sqlite URL (sqlite:///path/to/file.db): {url!r}")
        path = parts.path[1:]
        if not path:
            raise ConfigError(f"the sqlite URL names no file: {url!r}")
        options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ConfigError(
                f"unknown sqlite URL option {sorted(unknown)[0]!r}; known: synchronous"
            )
        return cls(path, synchronous=options.get("synchronous", "NORMAL"))

    # --- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._lock.acquire()
        try:
            # threads of their own, not the default executor (see `_blocking`)
            write_conn, version = await off_loop(self._connect_writer, "shoal-sqlite-open")
            try:
                read_conn = await off_loop(
                    partial(connect, self.path, self.synchronous, readonly=True),
                    "shoal-sqlite-open",
                )
            except BaseException:
                write_conn.close()
                raise
        except BaseException:
            self._lock.release()
            raise
        self._leased.clear()  # another process may have used the file since we last held it
        self._writer = Writer(write_conn, self._max_group, inline=self._inline)
        self._writer.start()
        self._reader = Reader(read_conn)
        self._checkpointer = Checkpointer(self.path, self.synchronous)
        self._checkpointer.start()
        logger.info(
            "opened %s",
            self.path,
            extra={"event": "store.opened", "path": str(self.path), "schema": version},
        )

    def _connect_writer(self) -> tuple[sqlite3.Connection, int]:
        conn = connect(self.path, self.synchronous)
        try:
            # the checkpointer thread copies the WAL; commits only bound it (_checkpoints)
            conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_PAGES}")
            # a WAL that grew to that bound is cut back to it when it starts over
            conn.execute(f"PRAGMA journal_size_limit = {WRITER_PAGES * 4096}")
            migrate(conn)
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            admin.forget_leaders(conn)
        except BaseException:
            conn.close()
            raise
        return conn, version

    async def close(self) -> None:
        writer, reader, checkpointer = self._writer, self._reader, self._checkpointer
        self._writer = self._reader = self._checkpointer = None
        # Each step runs whatever the ones before it raised; they run bottom to top: the
        # writer flushes what is queued, the checkpointer empties the WAL once nothing writes
        # any more, and the lock goes last.
        async with contextlib.AsyncExitStack() as steps:
            if writer is not None:
                steps.callback(self._lock.release)
            if checkpointer is not None:
                steps.push_async_callback(off_loop, checkpointer.stop, "shoal-sqlite-close")
            if reader is not None:
                steps.push_async_callback(reader.stop)
            if writer is not None:
                steps.push_async_callback(writer.stop)

    def set_ready_listener(self, listener: ReadyListener) -> None:
        """This process is the only one using the file: the listener is never called."""

    def set_broadcast_listener(self, listener: BroadcastListener) -> None:
        """This process is the only one using the file: the listener is never called."""

    async def broadcast(self, event: Event) -> None:
        """This process is the only one using the file: nobody to tell."""

    @property
    def group_stats(self) -> tuple[int, int]:
        """(commits, operations) of the writer so far: their ratio is the mean group size."""
        writer = self._writer
        return (writer.commits, writer.operations) if writer is not None else (0, 0)

    async def _write(self, op: Op[T], *, atomic: bool = False, rows: int | None = None) -> T:
        """Run `op` in the writer's next group. `rows`: the most rows it touches, when that is
        known and small; only such operations may run inline (see `inline_writes`), so that a
        sweep (promotion, reaping, retention, a purge) never runs on the event loop.
        """
        writer = self._writer
        if writer is None:
            raise Unavailable("store is closed")
        return await writer.submit(op, atomic=atomic, rows=rows)

    async def _read(self, query: Op[T]) -> T:
        reader = self._reader
        if reader is None:
            raise Unavailable("store is closed")
        return await reader.run(query)

    # --- jobs -------------------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[Job], now: float, dedupe_window: float = 0.0
    ) -> list[Enqueued]:
        # Encoding and decoding rows happens here, on the event loop, while the writer thread
        # (the bottleneck) runs SQLite with the GIL released.
        new = all(map(is_new, jobs))  # jobs from QueueService always are; tests may not be
        rows = [new_job_params(job) for job in jobs]
        if not new:
            rows = [row + run_params(job) for row, job in zip(rows, jobs, strict=True)]
        op = partial(ops.enqueue, jobs=jobs, rows=rows, now=now, window=dedupe_window, new=new)
        found = await self._write(op, rows=len(jobs))
        return [
            Enqueued(job, created=True)
            if hit is None
            else Enqueued(jobs[hit] if isinstance(hit, int) else row_to_job(hit), created=False)
            for job, hit in zip(jobs, found, strict=True)
        ]

    async def get_job(self, namespace: str, job_id: str) -> Job | None:
        return await self._read(partial(queries.get_job, namespace=namespace, job_id=job_id))

    async def list_jobs(self, query: JobQuery) -> JobPage:
        return await self._read(partial(queries.list_jobs, query=query))

    async def claim(self, request: ClaimRequest) -> list[Job]:
        op = partial(leases_ops.claim, request=request, leased=self._leased)
        if request.tasks is None or request.limit > INLINE_ROWS:
            # Reads its limit of queued jobs and at most SCHEDULED_SCAN scheduled ones: short
            # enough for the event loop. A larger claim runs on the writer thread anyway,
            # where a task filter may read on: SDK workers name their tasks in every claim.
            rows = await self._write(op, atomic=True, rows=request.limit)
        else:
            # A task filter reads past every waiting job of other tasks (44 ms for 200,000 of
            # them): the loop reads at most FILTER_SCAN of them, and when those do not settle
            # the claim, the writer thread reads on.
            settled = partial(
                leases_ops.claim_settled,
                request=request,
                leased=self._leased,
                scan=leases_ops.FILTER_SCAN,
            )
            found = await self._write(settled, atomic=True, rows=request.limit)
            rows = found if found is not None else await self._write(op, atomic=True)
        return [row_to_job(row) for row in rows]

    async def heartbeat(
        self, leases: Sequence[LeaseRef], lease_ttl: float, now: float
    ) -> HeartbeatResult:
        op = partial(leases_ops.heartbeat, leases=leases, lease_ttl=lease_ttl, now=now)
        return await self._write(op, rows=len(leases))

    async def complete(self, lease: LeaseRef, result: bytes | None, now: float) -> Job:
        writer = self._writer
        if writer is None:
            raise Unavailable("store is closed")
        # Merged: concurrent completions in one group become one statement.
        row = await writer.submit_merged(self._complete_many, (lease, result, now))
        return row_to_job(row)

    async def fail(
        self, lease: LeaseRef, error: JobError, now: float, retry_delay: float | None = None
    ) -> Job:
        op = partial(
            ops.fail,
            lease=lease,
            error=error,
            now=now,
            retry_delay=retry_delay,
            leased=self._leased,
        )
        return await self._write(op, atomic=True, rows=1)

    async def release(self, leases: Sequence[LeaseRef], now: float) -> list[Job]:
        op = partial(ops.release, leases=leases, now=now, leased=self._leased)
        return await self._write(op, rows=len(leases))

    async def release_worker(
        self, worker_id: str, now: float, reason: str, namespace: str | None = None
    ) -> list[Job]:
        op = partial(
            ops.release_worker,
            worker_id=worker_id,
            now=now,
            reason=reason,
            namespace=namespace,
            leased=self._leased,
        )
        return await self._write(op)

    async def resume_worker(self, resume: WorkerResume, now: float) -> Resumed:
        op = partial(ops.resume_worker, resume=resume, now=now, leased=self._leased)
        return await self._write(op, atomic=True)

    async def reap_expired(self, now: float, limit: int = 1000) -> list[Job]:
        op = partial(ops.reap_expired, now=now, limit=limit, leased=self._leased)
        return await self._write(op)

    async def set_progress(self, lease: LeaseRef, progress: float) -> None:
        op = partial(ops.set_progress, lease=lease, progress=progress)
        await self._write(op, atomic=True, rows=1)

    async def cancel(self, namespace: str, job_id: str, now: float) -> Job:
        op = partial(ops.cancel, namespace=namespace, job_id=job_id, now=now, leased=self._leased)
        return await self._write(op, atomic=True, rows=1)

    async def retry(self, namespace: str, job_id: str, now: float) -> Job:
        op = partial(ops.retry, namespace=namespace, job_id=job_id, now=now)
        return await self._write(op, atomic=True, rows=1)

    async def delete_job(self, namespace: str, job_id: str) -> None:
        op = partial(ops.delete_job, namespace=namespace, job_id=job_id)
        await self._write(op, atomic=True, rows=1)

    async def promote_due(self, now: float, limit: int = 10_000) -> DueResult:
        return await self._write(partial(ops.promote_due, now=now, limit=limit), atomic=True)

    async def purge_finished(self, before: float, limit: int = 10_000) -> int:
        op = partial(ops.purge_finished, before=before, limit=limit)
        return await self._write(op, atomic=True)

    # --- queues -----------------------------------------------------------------------------

    async def list_queues(self, namespace: str) -> list[QueueInfo]:
        return await self._read(partial(queries.list_queues, namespace=namespace))

    async def set_queue_paused(self, namespace: str, queue: str, paused: bool) -> None:
        op = partial(admin.set_queue_paused, namespace=namespace, queue=queue, paused=paused)
        await self._write(op, atomic=True)

    async def purge_queue(self, namespace: str, queue: str) -> int:
        op = partial(admin.purge_queue, namespace=namespace, queue=queue)
        return await self._write(op, atomic=True)

    async def delete_queue(self, namespace: str, queue: str) -> int:
        return await self._write(partial(admin.delete_queue, namespace=namespace, queue=queue))

    async def stats(self, namespace: str, queue: str | None = None) -> QueueStats:
        return await self._read(partial(queries.stats, namespace=namespace, queue=queue))
