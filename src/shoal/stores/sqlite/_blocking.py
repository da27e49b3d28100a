"""Blocking steps of opening and closing the store, each on a short-lived thread of its own.

Not in the loop's default executor: that one is shared, and may be full of calls nobody
waits for any more (the sync tasks a worker of the asyncio pool gave up on at shutdown), and
the store's close would then wait for them to end before it could flush and release the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def off_loop(call: Callable[[], T], name: str) -> T:
    """`call()`, run on a new thread named `name`; its result or its exception.

    The thread is not a daemon, as the executor's threads are not: the interpreter waits at
    exit for a close that was still flushing.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the caller, as run_in_executor does
            _settle(loop, future, functools.partial(future.set_exception, exc))
            return
        _settle(loop, future, functools.partial(future.set_result, result))

    threading.Thread(target=run, name=name).start()
    return await future


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], settle: Callable[[], None]
) -> None:
    """Run `settle` on the loop, unless the future is done (the caller was cancelled: the
    step ran all the same) or the loop has closed (nobody waits any more).
    """

    def apply() -> None:
        if not future.done():
            settle()

    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(apply)
