"""Shared by the PostgreSQL integration tests: the server URL, skipping only off CI."""

from __future__ import annotations

import os

import pytest


def postgres_url() -> str:
    """The test server's URL; a missing one skips locally and fails under CI."""
    url = os.environ.get("SHOAL_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("SHOAL_TEST_POSTGRES_URL is not set, and CI needs the PostgreSQL tests")
        pytest.skip("SHOAL_TEST_POSTGRES_URL is not set")
    return url
