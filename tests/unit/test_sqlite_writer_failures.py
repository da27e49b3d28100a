"""The SQLite writer when the disk or a bug fails it: every caller gets an answer, none waits
for ever, and the writer goes on once the disk is back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from shoal.core.errors import StorageError, Unavailable
from shoal.stores.sqlite._connection import connect
from shoal.stores.sqlite._threads import Writer


class _FailingDisk:
    """A real connection whose COMMIT and ROLLBACK fail while `failing` is set, as on a disk
    that returns I/O errors (a C connection's methods cannot be patched, so this wraps one).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.failing = False

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.failing and sql in ("COMMIT", "ROLLBACK"):
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def close(self) -> None:
        self._conn.close()


def _insert(name: str) -> Any:
    return lambda conn: conn.execute("INSERT INTO t VALUES (?)", (name,)) and name


@pytest.fixture
def disk(tmp_path: Path) -> _FailingDisk:
    conn = connect(tmp_path / "x.db", "NORMAL")
    conn.execute("CREATE TABLE t (name TEXT)")
    return _FailingDisk(conn, tmp_path / "x.db")


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "inline"])
async def test_a_commit_and_rollback_that_fail_fail_their_group_and_the_writer_goes_on(
    disk: _FailingDisk, inline: bool
) -> None:
    writer = Writer(disk, inline=inline)  # type: ignore[arg-type]
    writer.start()
    try:
        assert await writer.submit(_insert("before"), rows=1) == "before"
        disk.failing = True
        async with asyncio.timeout(5):
            with pytest.raises(StorageError, match="commit failed"):
                await writer.submit(_insert("lost"), rows=1)
        disk.failing = False
        async with asyncio.timeout(5):
            assert await writer.submit(_insert("after"), rows=1) == "after"
        names = [name for (name,) in disk.execute("SELECT name FROM t ORDER BY rowid")]
        assert names == ["before", "after"]
    finally:
        await writer.stop()


def _dies(conn: sqlite3.Connection) -> None:
    raise SystemExit("a bug that ends the thread")


_THREAD_DIES = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@_THREAD_DIES
async def test_the_group_a_dying_writer_thread_was_running_is_answered(
    disk: _FailingDisk,
) -> None:
    writer = Writer(disk)  # type: ignore[arg-type]
    writer.start()
    async with asyncio.timeout(5):
        with pytest.raises(StorageError, match="writer thread died"):
            await writer.submit(_dies, rows=None)
        with pytest.raises(Unavailable):
            writer.submit(_insert("later"), rows=1)
    await writer.stop()


@_THREAD_DIES
async def test_writes_of_a_loop_turn_handed_after_the_thread_died_are_answered(
    disk: _FailingDisk,
) -> None:
    writer = Writer(disk, inline=True)  # type: ignore[arg-type]
    writer.start()
    go = threading.Event()

    def dies_when_told(conn: sqlite3.Connection) -> None:
        go.wait(5)
        raise SystemExit("a bug that ends the thread")

    dying = writer.submit(dies_when_told, rows=None)  # a sweep: the thread runs it
    await asyncio.sleep(0.05)  # the thread holds it
    pending = writer.submit(_insert("pending"), rows=None)  # handed at the end of this turn
    go.set()
    writer._thread.join(5)  # the thread dies before this turn ends (the loop is held here)
    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(dying, pending, return_exceptions=True)
    assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
    await writer.stop()


async def test_a_write_submitted_just_before_stop_is_stored_without_an_error(
    disk: _FailingDisk, caplog: pytest.LogCaptureFixture
) -> None:
    # stop() hands the loop turn's writes to the thread, but the turn's flush stayed
    # scheduled: it ran an empty group inline, on a connection the thread may have closed
    writer = Writer(disk, inline=True)  # type: ignore[arg-type]
    writer.start()
    written = writer.submit(_insert("last"), rows=1)
    await writer.stop()
    assert await written == "last"
    await asyncio.sleep(0)  # the flush that was scheduled runs now, if it still can
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "WARNING")]
    conn = connect(disk.path, "NORMAL")
    assert [name for (name,) in conn.execute("SELECT name FROM t")] == ["last"]
    conn.close()
