"""The heart of shoal: the job model, the rules of its life, and the service over a store.

Nothing here imports any other part of shoal; stores, protocols and the SDK depend on it.
"""

from __future__ import annotations
