"""Which event loop the caller runs on: SDK calls reach the app's loop from threads and from
other loops, and take a shortcut when they already run on it.
"""

from __future__ import annotations

import asyncio

__all__ = ["on_loop"]


def on_loop(loop: asyncio.AbstractEventLoop | None) -> bool:
    """Whether the caller runs on `loop` (in its thread, inside a callback or task)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
