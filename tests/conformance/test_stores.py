from __future__ import annotations

from shoal.testing.store_contract import StoreContract
from shoal.testing.store_properties import StoreProperties


class TestStore(StoreContract, StoreProperties):
    """Every backend of conftest.BACKENDS, through the one suite."""
