from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_shoal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's SHOAL_* settings (the test database URL excepted)."""
    for name in list(os.environ):
        if name.startswith("SHOAL_") and not name.startswith("SHOAL_TEST_"):
            monkeypatch.delenv(name)
