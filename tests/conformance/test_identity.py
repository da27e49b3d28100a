from __future__ import annotations

from typing import cast

import pytest

from shoal.core.identity import IdentityStore
from shoal.core.ports import Store
from shoal.testing.identity_contract import IdentityContract


@pytest.fixture
def identity_store(store: Store) -> IdentityStore:
    """Each backend's store is also its identity store (one database)."""
    return cast(IdentityStore, store)


class TestIdentityStore(IdentityContract):
    """Every backend's identity half, through one suite."""
