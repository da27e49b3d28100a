"""What the SQLite store adds to the conformance suite: the file lock, URLs, migrations, group
commit (isolation of a failing operation, flush on close) and the completion fast path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from shoal.core import transitions
from shoal.core.errors import ConfigError, LeaseLost, StorageError, Unavailable
from shoal.core.model import Job, JobError, JobQuery, JobState, LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.stores.sqlite import SqliteStore, _rows
from shoal.stores.sqlite import _connection as connection_module
from shoal.stores.sqlite import _leases as leases_module
from shoal.stores.sqlite import _store as store_module
from shoal.stores.sqlite._connection import connect
from shoal.stores.sqlite._leases import completed
from shoal.stores.sqlite._rows import row_to_job, row_to_job_slow
from shoal.stores.sqlite._threads import INLINE_GROUP, INLINE_ROWS, Writer
from shoal.testing import make_job
from shoal.testing.store_contract import T0


def _claim(limit: int = 10) -> ClaimRequest:
    return ClaimRequest("default", ("default",), "w1", limit, 30.0, T0)


def _row(job: Job) -> list[object]:
    """`job` as a row of `JOB_COLUMNS`, from the parameters the store inserts."""
    names = f"{_rows._NEW_COLUMNS}, {_rows._RUN_COLUMNS}".split(", ")
    values = dict(zip(names, _rows.new_job_params(job) + _rows.run_params(job), strict=True))
    return [values[name.strip()] for name in _rows.JOB_COLUMNS.split(",")]


async def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "x.db")
    await first.open()
    second = SqliteStore(tmp_path / "x.db")
    with pytest.raises(StorageError, match="in use by another shoal store"):
        await second.open()
    await first.close()
    await second.open()  # the lock went with the first store
    await second.close()


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    with pytest.raises(Unavailable):
        await store.get_job("default", "x")
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(Unavailable):
        await store.enqueue([make_job()], T0)


def test_from_url() -> None:
    store = SqliteStore.from_url("sqlite:///var/shoal.db?synchronous=full")
    assert store.path == Path("var/shoal.db") and store.synchronous == "FULL"
    assert SqliteStore.from_url("sqlite:////abs/shoal.db").path == Path("/abs/shoal.db")
    for bad in ("postgresql://h/db", "sqlite://", "sqlite:///", "sqlite:///x.db?mode=fast"):
        with pytest.raises(ConfigError):
            SqliteStore.from_url(bad)
    with pytest.raises(ConfigError):
        SqliteStore("x.db", synchronous="OFF")


async def test_migrations_set_user_version_once(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    for _ in range(2):  # the second open finds the schema current and changes nothing
        store = SqliteStore(path)
        await store.open()
        await store.enqueue([make_job()], T0)
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StorageError, match="newer than this shoal"):
        await SqliteStore(path).open()
    with pytest.raises(StorageError, match="newer than this shoal"):  # not "in use": the
        await SqliteStore(path).open()  # failed open released its lock


async def test_a_file_of_schema_2_keeps_its_jobs_and_their_claim_order(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path, "NORMAL")
    for version, _, sql in connection_module._migrations()[:2]:
        conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
    queued, due = make_job(), make_job(priority=5, run_at=T0 + 10)
    sql, rows = (
        _rows.insert_jobs_sql(2),
        [*_rows.new_job_params(queued), *_rows.new_job_params(due)],
    )
    conn.execute(sql, rows)
    conn.close()
    store = SqliteStore(path)
    await store.open()  # migrates to schema 3: the claim index is built anew, queued jobs only
    try:
        claimed = await store.claim(dataclasses.replace(_claim(), now=T0 + 10))
        assert [job.id for job in claimed] == [due.id, queued.id]
    finally:
        await store.close()


async def test_a_failing_operation_rolls_back_alone_in_its_group(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    try:
        await store.enqueue([make_job() for _ in range(3)], T0)
        a, b, c = await store.claim(_claim())

        # Operations queued together commit together; each one's outcome is its own.
        results = await asyncio.gather(
            store.enqueue([make_job(queue="q1")], T0),
            store.complete(LeaseRef(a.id, "forged"), None, T0),
            store.release([LeaseRef(b.id, b.lease_token or "")], T0),
            store.complete(LeaseRef(c.id, c.lease_token or ""), b"r", T0),
            store.enqueue([make_job(queue="q2")], T0),
            return_exceptions=True,
        )
        assert isinstance(results[1], LeaseLost)
        assert [q.name for q in await store.list_queues("default")] == ["default", "q1", "q2"]
        stored_c = await store.get_job("default", c.id)
        assert stored_c is not None and stored_c.state is JobState.SUCCEEDED
        commits, operations = store.group_stats
        assert commits < operations
    finally:
        await store.close()


@pytest.mark.parametrize("inline_writes", [False, True])
async def test_close_flushes_queued_operations(tmp_path: Path, inline_writes: bool) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(path, inline_writes=inline_writes)
    await store.open()
    jobs = [make_job() for _ in range(50)]
    tasks = [asyncio.create_task(store.enqueue([job], T0)) for job in jobs]
    await asyncio.sleep(0)  # every task has queued its operation; none was acknowledged yet
    await store.close()
    assert all(task.done() for task in tasks)
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert (await reopened.stats("default")).total == 50
    finally:
        await reopened.close()


async def test_inline_writes_run_lone_small_groups_on_the_loop(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db", "NORMAL")
    conn.execute("CREATE TABLE t (thread INTEGER)")
    writer = Writer(conn, inline=True)
    writer.start()

    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (threading.get_ident(),))
        return threading.get_ident()

    try:
        loop_thread = threading.get_ident()
        assert await writer.submit(op, rows=1) == loop_thread  # a lone write: no thread hop
        assert await writer.submit(op, rows=None) != loop_thread  # a sweep: the thread
        # A crowded loop turn goes to the thread as one group: group commit is kept.
        commits = writer.commits
        threads = await asyncio.gather(
            *(writer.submit(op, rows=1) for _ in range(INLINE_GROUP + 1))
        )
        assert loop_thread not in threads and writer.commits - commits < len(threads)
    finally:
        await writer.stop()


class _SlowTakingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """The writer thread's queue, with the thread preempted just after it took an item (off
    the queue, not yet holding the lock that runs a group).
    """

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        if item is not None:
            time.sleep(0.2)
        return item


async def test_an_inline_group_never_commits_before_one_handed_to_the_thread(
    tmp_path: Path,
) -> None:
    conn = connect(tmp_path / "x.db", "NORMAL")
    conn.execute("CREATE TABLE t (name TEXT)")
    writer = Writer(conn, inline=True)
    writer._queue = _SlowTakingQueue()
    writer.start()

    def insert(name: str) -> Callable[[sqlite3.Connection], None]:
        return lambda conn: conn.execute("INSERT INTO t VALUES (?)", (name,)) and None

    try:
        first = writer.submit(insert("first"), rows=None)  # a sweep: the thread takes it
        await asyncio.sleep(0.05)
        # the queue was empty and the lock free: this later write ran inline, and first
        await writer.submit(insert("second"), rows=1)
        await first
        order = [name for (name,) in conn.execute("SELECT name FROM t ORDER BY rowid")]
        assert order == ["first", "second"]
    finally:
        await writer.stop()


async def test_completion_fast_path_matches_the_row(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    try:
        await store.enqueue([make_job() for _ in range(4)], T0)
        a, b, c, d = await store.claim(_claim())
        await store.cancel("default", b.id, T0)  # the cached copy follows the cancel request
        # A stale lease pops the cache entry: the live one then takes the slow path.
        with pytest.raises(LeaseLost):
            await store.fail(LeaseRef(c.id, "stale"), JobError("E", ""), T0)
        done = await asyncio.gather(
            *(store.complete(LeaseRef(j.id, j.lease_token or ""), b"r", T0 + 1) for j in (a, b, c))
        )
        for job in done:
            assert job == await store.get_job("default", job.id)
        assert done[1].cancel_requested and done[1].state is JobState.SUCCEEDED
        # The same job twice in one group: exactly one completion wins.
        lease = LeaseRef(d.id, d.lease_token or "")
        twice = await asyncio.gather(
            store.complete(lease, None, T0 + 2),
            store.complete(lease, None, T0 + 2),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in twice) == ["Job", "LeaseLost"]
    finally:
        await store.close()


def test_completed_row_equals_the_transition() -> None:
    job = transitions.claim(make_job(tags=("x",)), "w", "tok", T0, 30.0)
    job = transitions.fail(job, "tok", JobError("E", "m"), T0, None)  # keeps its error
    job = transitions.claim(job, "w", "tok2", T0 + 10, 30.0)
    row = completed(_row(job), b"r", T0 + 11)
    assert row_to_job(row) == transitions.complete(job, "tok2", b"r", T0 + 11)


async def test_a_stale_cache_entry_falls_back_to_reading_rows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    try:
        await store.enqueue([make_job(), make_job()], T0)
        a, b = await store.claim(_claim())
        writer = store._writer
        assert writer is not None
        # A change behind the cache's back (no operation does this; the guard must catch it).
        await writer.submit(
            lambda conn: conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (b.id,)),
            rows=1,
        )
        done = await asyncio.gather(
            *(store.complete(LeaseRef(j.id, j.lease_token or ""), None, T0) for j in (a, b))
        )
        assert [job.cancel_requested for job in done] == [False, True]
        for job in done:
            assert job == await store.get_job("default", job.id)
    finally:
        await store.close()


def test_fast_row_decoding_equals_the_constructor() -> None:
    from shoal.core.model import Job

    assert not hasattr(Job, "__post_init__"), "row_to_job fills slots and would skip it"
    job = transitions.claim(
        make_job(tags=("a", "b"), idempotency_key="k", timeout=1.5, parent_id="p"), "w", "t", T0, 9
    )
    job = transitions.fail(job, "t", JobError("E", "m", "tb", retryable=False), T0 + 1, None)
    row = _row(job)
    assert row_to_job(row) == row_to_job_slow(row) == job
    assert hash(row_to_job(row)) == hash(job)


async def test_new_jobs_are_stored_whole_from_their_short_rows(tmp_path: Path) -> None:
    from shoal.stores.sqlite._rows import is_new

    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    fresh = [make_job(tags=("a",), idempotency_key="k", timeout=2.0, schedule_id="s")]
    fresh += [make_job(run_at=T0 + 5, parent_id="p") for _ in range(600)]  # two statements
    ran = transitions.claim(make_job(), "w", "t", T0, 9)
    try:
        assert all(map(is_new, fresh)) and not is_new(ran)
        await store.enqueue(fresh, T0)
        await store.enqueue([ran], T0)  # a job that ran: every column is written
        for job in [*fresh, ran]:
            assert await store.get_job("default", job.id) == job
    finally:
        await store.close()


def test_inserts_come_in_few_sizes_and_new_covers_every_field_a_run_sets() -> None:

    from shoal.core.model import Job
    from shoal.stores.sqlite._rows import INSERT_CHUNK, insert_chunks, is_new, new_job_params

    sizes: set[int] = set()
    for rows in range(3 * INSERT_CHUNK):
        chunks = insert_chunks(rows)
        assert sum(chunks) == rows and len(chunks) <= rows // INSERT_CHUNK + 3
        sizes.update(chunks)
    assert len(sizes) <= 23  # each size is a statement kept prepared
    # A field added to Job must be written by new_job_params or checked by is_new.
    new_fields = {"id", "namespace", "queue", "task", "payload", "state", "created_at"}
    new_fields |= {"run_at", "content_type", "priority", "max_attempts", "backoff", "timeout"}
    new_fields |= {"idempotency_key", "tags", "parent_id", "schedule_id"}
    run_values = {"attempt": 1, "started_at": 0.0, "finished_at": 0.0, "result": b""}
    run_values |= {"error": JobError("E", "m"), "lease_token": "", "worker_id": ""}
    run_values |= {"lease_expires_at": 0.0, "progress": 0.0, "cancel_requested": True}
    assert {f.name for f in dataclasses.fields(Job)} == new_fields | set(run_values)
    assert len(new_job_params(make_job())) == len(new_fields)
    for name, value in run_values.items():  # even a falsy value means the job ran
        assert not is_new(dataclasses.replace(make_job(), **{name: value})), name


async def test_only_writes_of_known_few_rows_run_inline(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db", inline_writes=True)
    await store.open()

    def thread_of(conn: sqlite3.Connection) -> int:
        return threading.get_ident()

    try:
        loop_thread = threading.get_ident()
        assert await store._write(thread_of, rows=1) == loop_thread
        # A sweep (promotion, reaping, retention, a purge) says no row count: the thread.
        assert await store._write(thread_of) != loop_thread
        assert await store._write(thread_of, rows=INLINE_ROWS) == loop_thread
        assert await store._write(thread_of, rows=INLINE_ROWS + 1) != loop_thread
    finally:
        await store.close()


async def test_another_connections_write_lock_holds_the_write_not_the_event_loop(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "x.db", inline_writes=True)
    await store.open()
    other = sqlite3.connect(store.path, isolation_level=None)  # an admin's sqlite3 shell
    try:
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, other.execute, "ROLLBACK")
        started = loop.time()
        enqueue = asyncio.ensure_future(store.enqueue([make_job()], T0))
        # inline, the write waited out SQLite's busy timeout on the loop: nothing else ran
        await asyncio.sleep(0.05)
        assert loop.time() - started < 0.2 and not enqueue.done()
        [stored] = await enqueue  # the thread waited for the lock, then wrote
        assert stored.created and loop.time() - started >= 0.3
    finally:
        other.close()
        await store.close()


async def test_a_claim_filtered_by_task_reads_a_bounded_prefix_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its scan is not bounded by its limit: every waiting job of another task is read and
    # skipped. On the loop it reads at most FILTER_SCAN of them, and the writer thread the rest.
    store = SqliteStore(tmp_path / "x.db", inline_writes=True)
    await store.open()
    calls: list[tuple[str, bool, bool]] = []  # which, on the loop, gave up

    def recording(name: str) -> Any:
        real = getattr(leases_module, name)

        def call(conn: sqlite3.Connection, **kwargs: Any) -> Any:
            rows = real(conn, **kwargs)
            calls.append((name, threading.get_ident() == loop, rows is None))
            return rows

        return call

    for name in ("claim", "claim_settled"):
        monkeypatch.setattr(leases_module, name, recording(name))
    loop = threading.get_ident()
    scan = leases_module.FILTER_SCAN
    base = ClaimRequest("default", ("default",), "w", 5, 30.0, T0, tasks=("work",))
    try:
        # a short queue: the prefix holds all of it, and settles a claim of fewer than its limit
        await store.enqueue([make_job(task="other") for _ in range(100)], T0)
        await store.enqueue([make_job(), make_job()], T0)
        assert [job.task for job in await store.claim(base)] == ["work", "work"]
        assert calls == [("claim_settled", True, False)]
        # a full prefix with enough of its tasks settles it too
        await store.enqueue([make_job() for _ in range(scan)], T0)
        calls.clear()
        assert len(await store.claim(base)) == 5 and calls == [("claim_settled", True, False)]
        await store.claim(dataclasses.replace(base, limit=scan))  # the rest of "work"
        # past the prefix: the loop gives up, the writer thread reads on
        await store.enqueue([make_job(task="other") for _ in range(scan)], T0)
        late = make_job()  # after all the others in claim order: its id is the newest
        await store.enqueue([late], T0)
        calls.clear()
        assert [job.id for job in await store.claim(base)] == [late.id]
        assert calls == [("claim_settled", True, True), ("claim", False, False)]
        # unfiltered: inline, one call
        calls.clear()
        [anything] = await store.claim(dataclasses.replace(base, tasks=None, limit=1))
        assert anything.task == "other" and calls == [("claim", True, False)]
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _one_queued_job(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, sqlite3.Connection]]:
    """A store holding one queued job, and its writer's connection (idle between calls)."""
    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    try:
        await store.enqueue([make_job()], T0)
        assert store._writer is not None
        yield store, store._writer._conn
    finally:
        await store.close()


def _claim_steps(conn: sqlite3.Connection, request: ClaimRequest, expect: int = 0) -> int:
    """SQLite VM instructions (in hundreds) a claim runs, rolled back: what its scans cost."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 100)
    conn.execute("BEGIN IMMEDIATE")
    try:
        claimed = leases_module.claim(conn, request=request, leased={})
        assert len(claimed) == (expect or request.limit)
    finally:
        conn.execute("ROLLBACK")
        conn.set_progress_handler(None, 0)
    return steps


async def test_an_unfiltered_claim_reads_no_job_that_waits_for_later(tmp_path: Path) -> None:
    # Delayed jobs and retries in their backoff may have a higher priority than the ready ones.
    # Were they in the claim's index, ahead of the ready jobs, every claim would read them all,
    # inline on the event loop, and cost more the more of them wait.
    async with _one_queued_job(tmp_path) as (store, conn):
        alone = _claim_steps(conn, _claim(limit=1))
        waiting = [make_job(priority=5, run_at=T0 + 3600) for _ in range(5_000)]
        await store.enqueue(waiting, T0)
        behind = _claim_steps(conn, _claim(limit=1))
        assert behind <= alone + 2, (alone, behind)


@pytest.mark.parametrize("run_at", [T0 - 5, T0 + 0.05], ids=["due", "within the lookahead"])
async def test_a_claim_reads_few_of_a_burst_of_scheduled_jobs_of_other_queues(
    tmp_path: Path, run_at: float
) -> None:
    # Due jobs the promoter has yet to move (after a restart), or a burst within the
    # lookahead: the due index holds them for every queue and namespace, by run_at.
    async with _one_queued_job(tmp_path) as (store, conn):
        request = dataclasses.replace(_claim(limit=2), lookahead=0.1)  # room for both reads
        steps = []
        for size in (1_000, 4_000):  # 1,000 then 5,000 waiting
            burst = [
                make_job(namespace=("default", "other")[i % 2], queue="elsewhere", run_at=run_at,
                         created_at=T0 - 10)
                for i in range(size)
            ]  # fmt: skip
            await store.enqueue(burst, T0)
            steps.append(_claim_steps(conn, request, expect=1))
        assert steps[1] <= steps[0] * 1.2, steps  # it reads no more of 5,000 than of 1,000


async def test_checkpoints_run_on_their_thread_and_keep_the_wal_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "WRITER_PAGES", 600)  # ~2.4 MiB instead of 64
    store = SqliteStore(tmp_path / "x.db", inline_writes=True)
    await store.open()
    wal = tmp_path / "x.db-wal"
    checkpointer, writer = store._checkpointer, store._writer
    assert checkpointer is not None and writer is not None
    assert writer._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 600
    largest = 0
    for _ in range(400):  # lone commits of about seven pages each: ~2,800 pages of WAL
        await store.enqueue([make_job()], T0)
        largest = max(largest, wal.stat().st_size)
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.2)  # a round of the thread
    assert checkpointer.checkpoints >= 1
    assert largest < 2 * 600 * 4100  # started over past the writer's bound, not grown for ever
    await store.close()
    assert not wal.exists() or wal.stat().st_size == 0  # the last checkpoint truncates it
    reopened = SqliteStore(tmp_path / "x.db")
    await reopened.open()
    assert len((await reopened.list_jobs(JobQuery(limit=1000))).jobs) == 400
    await reopened.close()
