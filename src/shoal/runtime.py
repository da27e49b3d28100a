"""Process-wide settings that only entry points apply (`shoal server`, `shoal worker`).

A library must not change them behind its host's back, so nothing else calls this module.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any

#: Allocations (net of frees) between two young collections; CPython's default is 700.
YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect garbage less often, and never walk the objects of start-up again.

    Every job allocates a few hundred objects (messages, jobs, futures), so at CPython's
    default a busy server or worker ran a young collection every few jobs, and each older
    collection walked every module and class loaded at start-up. Almost all of a job's objects
    are freed by reference counting; the collector only finds cycles, which are rare here, so
    collecting seventy times less often holds little more memory. `gc.freeze()` moves what
    start-up made out of the collector's sight for good.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion on uvloop when it is installed (it is wherever it builds),
    else on asyncio's own loop.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        asyncio.run(main)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
