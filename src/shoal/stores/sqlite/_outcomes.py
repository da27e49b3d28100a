"""What the writer hands back: each operation's outcome (its future, with its result or its
error), and how outcomes reach their callers.

An operation's error is wrapped where it is caught (`_wrap`); a group that did not commit fails
all its operations (`_all_failed`); `_resolve` sets the futures, on their callers' event loops
(the writer calls it once a group has committed or failed: see `_threads`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from shoal.core.errors import ShoalError, StorageError

_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _wrap(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        wrapped = StorageError(f"sqlite: {exc}")
        wrapped.__cause__ = exc
        return wrapped
    return exc


def _all_failed(
    outcomes: list[_Outcome], reason: str, cause: BaseException | None = None
) -> list[_Outcome]:
    failed: list[_Outcome] = []
    for future, _, exc in outcomes:
        if exc is None or not isinstance(exc, ShoalError):
            exc = StorageError(reason)
            exc.__cause__ = cause
        failed.append((future, None, exc))
    return failed


def _resolve(outcomes: list[_Outcome]) -> None:
    for future, result, exc in outcomes:
        if future.done():  # the caller was cancelled; the operation still happened
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
