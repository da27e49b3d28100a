"""The in-memory store: complete and fast, for local mode and tests; gone with the process."""

from __future__ import annotations

from shoal.stores.memory._store import MemoryStore

__all__ = ["MemoryStore"]
