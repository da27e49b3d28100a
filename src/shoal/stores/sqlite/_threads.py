"""The writer: the one thread that owns the store's write connection, with group commit (the
reader is in `_reader`, the outcomes it hands back in `_outcomes`).

With `inline`, the event loop that opened the store runs the few small operations of a loop
turn itself when the writer thread is idle (no queue, no group running); a lock keeps one
group at a time on the connection, so everything below holds for them too.

The writer takes every operation pending in its queue (up to a bound), runs them in one
transaction, each in its own SAVEPOINT so that a failing operation rolls back alone, COMMITs,
and only then resolves the operations' futures on their event loops. While it commits, new
operations pile up in the queue and make the next group: the more concurrent callers, the
fewer commits per operation, with nobody acknowledged before their data is in the WAL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from shoal.core.errors import StorageError, Unavailable
from shoal.stores.sqlite._blocking import off_loop
from shoal.stores.sqlite._outcomes import _all_failed, _Outcome, _resolve, _wrap

logger = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]
#: Runs many queued operations of one kind at once: gets their arguments, returns per operation
#: its result or the exception it raised.
Merge = Callable[[sqlite3.Connection, list[Any]], Sequence[Any]]


class _Item:
    __slots__ = ("arg", "atomic", "future", "merge", "op", "rows")

    def __init__(
        self,
        op: Op[Any] | None,
        future: asyncio.Future[Any],
        atomic: bool,
        merge: Merge | None = None,
        arg: Any = None,
        rows: int | None = 1,
    ) -> None:
        self.op = op
        self.future = future
        self.atomic = atomic
        self.merge = merge
        self.arg = arg
        #: The most rows the operation touches; None when unknown (a sweep).
        self.rows = rows


#: The most operations of one loop turn that may run inline (see `Writer._flush_pending`).
INLINE_GROUP = 8
#: How long the writer thread waits for another connection's write lock (a `sqlite3` shell,
#: a backup) before it fails the group, as SQLite's busy timeout did.
BUSY_WAIT = 5.0
#: The most rows an inline group may touch: a claim by a worker with up to this many free
#: slots, or an enqueue of this many jobs, holds the loop for ~1-2 ms at most, against the
#: ~0.3 ms that the thread's two wake-ups add to every one of them (W3's claim to start).
INLINE_ROWS = 64


class _Busy(Exception):
    """Another connection holds the write lock: an inline group goes to the thread."""


class Writer:
    """The one thread that writes; see the module docstring."""

    def __init__(
        self, conn: sqlite3.Connection, max_group: int = 2000, *, inline: bool = False
    ) -> None:
        self._conn = conn
        # The writer waits for a busy database itself (`_begin`): SQLite's own wait would
        # hold the event loop for the whole timeout when a group runs inline.
        conn.execute("PRAGMA busy_timeout = 0")
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        #: Held while a group runs, by the thread or inline on the event loop.
        self._running = threading.Lock()
        self._inline = inline
        self._home: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Item] = []
        #: Operations handed to the thread and not yet run. An inline group runs only when
        #: there are none: the thread may have taken some off its queue (which is then empty)
        #: without holding `_running` yet, and an inline group must not commit before them.
        self._handed = 0
        self._handed_lock = threading.Lock()
        #: The thread has died (a bug): what is handed to it now fails at once.
        self._dead = False
        self._thread = threading.Thread(target=self._run, name="shoal-sqlite-writer", daemon=True)
        self._stopping = False
        #: Transactions committed and operations run: their ratio is the group size.
        self.commits = 0
        self.operations = 0

    def start(self) -> None:
        if self._inline:
            self._home = asyncio.get_running_loop()
        self._thread.start()

    def submit(self, op: Op[T], *, rows: int | None, atomic: bool = False) -> asyncio.Future[T]:
        """Queue `op` for the next group; the future resolves after its COMMIT.

        `atomic` ops run at most one writing statement, which SQLite undoes by itself when it
        fails, so they need no savepoint. `rows` is the most rows `op` touches, when known: only
        groups of at most `INLINE_ROWS` known rows may run inline, so that the event loop goes
        on while SQLite works through a bulk operation or a sweep.
        """
        if self._stopping:
            raise Unavailable("store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(_Item(op, future, atomic, rows=rows))
        return future

    def submit_merged(self, merge: Merge, arg: Any) -> asyncio.Future[Any]:
        """Queue an operation that runs together with the neighbours of the same `merge`.

        Consecutive operations with one `merge` function in a group are handed to it at once,
        so that concurrent completions become one statement; order between kinds is kept.
        """
        if self._stopping:
            raise Unavailable("store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(_Item(None, future, True, merge, arg))
        return future

    def _put(self, item: _Item) -> None:
        if self._home is None or item.future.get_loop() is not self._home:
            self._hand([item])
            return
        if not self._pending:
            self._home.call_soon(self._flush_pending)
        self._pending.append(item)

    def _flush_pending(self) -> None:
        """Run what this loop turn submitted: inline when the thread is idle, else queue it.

        Inline saves the two thread wake-ups of a queued operation (about half of a lone
        enqueue's time); a busy writer keeps its group commit, since then the turn's
        operations join the thread's next group.
        """
        group, self._pending = self._pending, []
        if not group:
            return  # stop() handed the turn's writes to the thread (and may have closed)
        if (
            len(group) <= INLINE_GROUP
            and _rows_touched(group) <= INLINE_ROWS
            and not self._handed
            and not self._dead  # its connection is closed: `_hand` answers them
            and self._running.acquire(blocking=False)
        ):
            outcomes: list[_Outcome] = []
            try:
                outcomes = self._run_group(group, wait=False)
            except _Busy:
                pass  # another connection writes: the thread waits for it, not the loop
            except BaseException:
                # A bug, not a database error (those fail their group only): fail the group
                # rather than leave its callers waiting, as the thread does.
                logger.exception("inline group died", extra={"event": "store.writer_died"})
                error = StorageError("the write failed")
                outcomes = [(item.future, None, error) for item in group]
                raise
            finally:
                self._running.release()
                _resolve(outcomes)
            if outcomes:
                return
        self._hand(group)

    def _hand(self, items: list[_Item]) -> None:
        """Queue operations for the thread, counted until it has run them."""
        with self._handed_lock:  # held while putting: nothing lands behind a dead thread's drain
            if self._dead:
                _resolve(_thread_died(items))
                return
            self._handed += len(items)
            for item in items:
                self._queue.put(item)

    async def stop(self) -> None:
        """Run what is queued, then end the thread and close the connection."""
        if not self._stopping:
            self._stopping = True
            self._hand(self._pending)
            self._pending = []
            self._queue.put(None)
        # not in the default executor, which abandoned sync calls may fill (`_blocking`)
        await off_loop(self._thread.join, "shoal-sqlite-writer-stop")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # A bug, not a database error (those fail their group only): nobody may wait
            # forever, so refuse new operations and fail the queued ones.
            logger.exception("writer thread died", extra={"event": "store.writer_died"})
            self._fail_all([])
            raise
        finally:
            self._conn.close()

    def _loop(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        running = True
        while running:
            item = get()
            if item is None:
                break
            group = [item]
            while len(group) < self._max_group:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    running = False
                    break
                group.append(item)
            with self._running:
                try:
                    outcomes = self._run_group(group)
                except BaseException:
                    # Uncommitted (the connection closes as the thread ends): say so, rather
                    # than leave the group's callers waiting for ever.
                    self._fail_all(group)
                    raise
                finally:
                    with self._handed_lock:
                        self._handed -= len(group)
            self._settle(outcomes)

    def _fail_all(self, running: list[_Item]) -> None:
        """The thread is dying: refuse new operations, fail `running` and everything queued."""
        self._stopping = True
        with self._handed_lock:
            self._dead = True
        items = list(running)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                items.append(item)
        self._settle(_thread_died(items))

    def _run_group(self, group: list[_Item], *, wait: bool = True) -> list[_Outcome]:
        conn = self._conn
        outcomes: list[_Outcome] = []
        try:
            if conn.in_transaction:  # the ROLLBACK after a failed COMMIT failed too
                conn.execute("ROLLBACK")
            self._begin(wait)
            if len(group) == 1 and group[0].merge is None:
                outcomes.append(self._run_alone(group[0], wait))
            else:
                start = 0
                while start < len(group):
                    merge = group[start].merge
                    if merge is None:
                        outcomes.append(self._run_one(group[start]))
                        start += 1
                    else:
                        end = start + 1
                        while end < len(group) and group[end].merge is merge:
                            end += 1
                        outcomes += self._run_merged(merge, group[start:end])
                        start = end
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (disk full, I/O error):
                        # nothing of this group so far is stored, so nobody may be told so.
                        outcomes = _all_failed(outcomes, "the transaction was rolled back")
                        self._begin(wait)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            logger.exception("group commit failed", extra={"event": "store.commit_failed"})
            self._roll_back()
            done = {id(future) for future, _, _ in outcomes}
            outcomes += [(i.future, None, None) for i in group if id(i.future) not in done]
            return _all_failed(outcomes, f"commit failed: {exc}", exc)
        self.commits += 1
        self.operations += len(group)
        return outcomes

    def _roll_back(self) -> None:
        """Undo a failed group; if the disk refuses that too, the next group tries again."""
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                logger.exception("rollback failed", extra={"event": "store.rollback_failed"})

    def _begin(self, wait: bool) -> None:
        """BEGIN IMMEDIATE; while another connection writes, retry until `BUSY_WAIT` on the
        thread, or raise `_Busy` at once (`wait=False`: inline on the event loop).
        """
        deadline = time.monotonic() + BUSY_WAIT
        pause = 0.001
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if not wait:
                    raise _Busy from exc
                if time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _run_merged(self, merge: Merge, items: list[_Item]) -> list[_Outcome]:
        conn = self._conn
        conn.execute("SAVEPOINT merged")
        try:
            results = merge(conn, [item.arg for item in items])
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO merged")
                conn.execute("RELEASE merged")
            error = _wrap(exc)
            return [(item.future, None, error) for item in items]
        conn.execute("RELEASE merged")
        return [
            (item.future, None, result)
            if isinstance(result, BaseException)
            else (item.future, result, None)
            for item, result in zip(items, results, strict=True)
        ]

    def _run_alone(self, item: _Item, wait: bool) -> _Outcome:
        assert item.op is not None
        try:
            return (item.future, item.op(self._conn), None)
        except Exception as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._begin(wait)  # so that the COMMIT has something to end
            return (item.future, None, _wrap(exc))

    def _run_one(self, item: _Item) -> _Outcome:
        conn = self._conn
        assert item.op is not None
        if item.atomic:
            try:
                return (item.future, item.op(conn), None)
            except Exception as exc:
                return (item.future, None, _wrap(exc))
        conn.execute("SAVEPOINT op")
        try:
            result = item.op(conn)
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
            return (item.future, None, _wrap(exc))
        conn.execute("RELEASE op")
        return (item.future, result, None)

    def _settle(self, outcomes: list[_Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, batch in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, batch)
            except RuntimeError:  # the loop is closed: nobody waits for these any more
                pass


def _rows_touched(group: list[_Item]) -> float:
    """The most rows a group touches (infinite when one of its operations does not say)."""
    total = 0
    for item in group:
        if item.rows is None:
            return math.inf
        total += item.rows
    return total


def _thread_died(items: list[_Item]) -> list[_Outcome]:
    return [(item.future, None, StorageError("the writer thread died")) for item in items]
