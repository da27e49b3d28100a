"""What a task's `current_job()` context accepts."""

from __future__ import annotations

import pytest

from shoal.core.errors import InvalidArgument
from shoal.sdk._context import CancelFlag, JobContext


def _context(reported: list[float]) -> JobContext:
    return JobContext("j", "t", 1, CancelFlag(), lambda: None, reported.append)


@pytest.mark.parametrize(("given", "sent"), [(0.5, 0.5), (-1, 0.0), (7, 1.0), ("0.25", 0.25)])
def test_progress_is_clamped_to_0_1(given: object, sent: float) -> None:
    reported: list[float] = []
    _context(reported).progress(given)  # type: ignore[arg-type]
    assert reported == [sent]


def test_nan_progress_is_refused_here_not_by_the_server() -> None:
    # min/max let NaN through, and the server's refusal came back named after the job
    reported: list[float] = []
    with pytest.raises(InvalidArgument) as raised:
        _context(reported).progress(float("nan"))
    assert raised.value.field == "progress" and reported == []
