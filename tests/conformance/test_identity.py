from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shoal.core.identity import IdentityStore
from shoal.stores.memory import MemoryStore
from shoal.testing.identity_contract import IdentityContract


@pytest.fixture(params=["memory"])
async def identity_store(request: pytest.FixtureRequest) -> AsyncIterator[IdentityStore]:
    store = MemoryStore()
    await store.open()
    yield store
    await store.close()


class TestIdentityStore(IdentityContract):
    """Every backend's identity half, through one suite."""
