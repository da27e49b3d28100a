"""Durations and times on the command line are finite: NaN, infinity and numbers too large for
a float are usage errors (exit 2, one line naming the option), not a traceback or a wait that
never ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Shoal

HUGE = "1" + "0" * 400  # parses as a float, to infinity


@pytest.mark.parametrize(
    ("option", "args"),
    [
        ("--every", ("schedules", "add", "--task", "x", "--every", "nan")),
        ("--every", ("schedules", "add", "--task", "x", "--every", "inf")),
        ("--every", ("schedules", "add", "--task", "x", "--every", "-infs")),
        ("--every", ("schedules", "add", "--task", "x", "--every", f"{HUGE}ms")),
        ("--every", ("schedules", "add", "--task", "x", "--every", "1e308d")),
        ("--every", ("schedules", "add", "--task", "x", "--every", "-5s")),
        ("--at", ("schedules", "add", "--task", "x", "--at", "nan")),
        ("--at", ("schedules", "add", "--task", "x", "--at", "inf")),
        ("--at", ("schedules", "add", "--task", "x", "--at", "+nans")),
        ("--timeout", ("enqueue", "t", "--wait", "--timeout", "nan")),
        ("--timeout", ("enqueue", "t", "--wait", "--timeout", "infinity")),
        ("--delay", ("enqueue", "t", "--delay", "nan")),
        ("--delay", ("enqueue", "t", "--delay", "inf")),
    ],
)
def test_a_duration_that_is_not_finite_is_a_usage_error(
    shoal: Shoal, option: str, args: tuple[str, ...]
) -> None:
    refused = shoal(*args)
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"shoal: error: usage: {option} ")


def test_a_token_lifetime_too_large_for_a_float_is_a_usage_error(
    shoal: Shoal, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'auth.db'}"
    args = ("tokens", "create", "--store", store, "--grant", "default=admin", "--owner", "ci")
    refused = shoal(*args, "--expires", f"{HUGE}d", url=None, ns=False)
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.splitlines()
    assert line.startswith("shoal: error: --expires ")  # as its other refusals (no "usage:")
