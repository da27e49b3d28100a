from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.errors import InvalidArgument
from shoal.core.model import JobQuery
from shoal.core.retry import RetryPolicy
from shoal.core.validation import (
    MAX_RETRY_DELAY,
    EnqueueRequest,
    Limits,
    check_enqueue,
    check_query,
    parse_state,
)


def test_exponential_backoff_grows_and_caps() -> None:
    policy = RetryPolicy(base=1, factor=2, cap=10, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 8, 10]


def test_fixed_backoff() -> None:
    assert RetryPolicy.fixed(3).delay(7) == 3


@pytest.mark.parametrize("factor", [3.0, 10.0, 1e6])
def test_exponential_backoff_stays_at_its_cap_however_many_attempts(factor: float) -> None:
    # factor ** (attempt - 1) overflows a float long before max_attempts' limit
    policy = RetryPolicy(base=1, factor=factor, cap=3600, jitter=0.5)
    assert all(1800 <= policy.delay(attempt) <= 5400 for attempt in (311, 648, 10**6))


def test_a_delay_is_at_most_the_longest_retry_delay() -> None:
    assert RetryPolicy(base=1e12, cap=1e12, jitter=0).delay(1) == MAX_RETRY_DELAY


@given(attempt=st.integers(1, 50), jitter=st.floats(0, 1), seed=st.integers(0, 1000))
def test_jitter_stays_within_its_fraction(attempt: int, jitter: float, seed: int) -> None:
    policy = RetryPolicy(base=1, factor=2, cap=60, jitter=jitter)
    raw = min(2.0 ** (attempt - 1), 60)
    delay = policy.delay(attempt, random.Random(seed))
    assert raw * (1 - jitter) - 1e-9 <= delay <= raw * (1 + jitter) + 1e-9


@given(
    kind=st.sampled_from(["fixed", "exponential"]),
    base=st.floats(0, 1e4),
    factor=st.floats(1, 10),
    cap=st.floats(0, 1e5),
    jitter=st.floats(0, 1),
)
def test_policy_text_round_trips(
    kind: str, base: float, factor: float, cap: float, jitter: float
) -> None:
    policy = RetryPolicy(kind, base, factor, cap, jitter)  # type: ignore[arg-type]
    parsed = RetryPolicy.parse(policy.encode())
    for name in ("base", "factor", "cap", "jitter"):
        assert math.isclose(getattr(parsed, name), getattr(policy, name), rel_tol=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        "linear:base=1",
        "fixed:base=x",
        "fixed:speed=1",
        "exponential:factor=0.5",
        # not finite: the job's next run_at would be NaN (never due) or infinite
        "fixed:base=nan,cap=nan",
        "exponential:base=1,factor=nan",
        "exponential:base=inf,cap=inf",
        "exponential:base=1,factor=2,cap=inf",
    ],
)
def test_bad_policies_name_the_backoff_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        RetryPolicy.parse(text)
    assert raised.value.field == "backoff"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"task": ""}, "task"),
        ({"queue": ""}, "queue"),
        ({"queue": "has space"}, "queue"),
        ({"namespace": "x" * 201}, "namespace"),
        ({"delay": -1.0}, "delay"),
        ({"delay": float("nan")}, "delay"),
        ({"delay": 1.0, "run_at": 5.0}, "delay"),
        ({"payload": b"x" * (1024 * 1024 + 1)}, "payload"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0.0}, "timeout"),
        ({"priority": 2**40}, "priority"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"tags": ("ok", "bad tag")}, "tags"),
    ],
)
def test_bad_enqueue_input_names_the_field(changes: dict[str, object], field: str) -> None:
    request = EnqueueRequest(**{"task": "t", **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as raised:
        check_enqueue(request, Limits())
    assert raised.value.field == field and raised.value.code == "invalid_argument"


def test_payload_limit_is_configurable() -> None:
    check_enqueue(EnqueueRequest("t", payload=b"x" * 10), Limits(max_payload_bytes=10))
    with pytest.raises(InvalidArgument, match="maximum is 10"):
        check_enqueue(EnqueueRequest("t", payload=b"x" * 11), Limits(max_payload_bytes=10))


@pytest.mark.parametrize("field", ["max_payload_bytes", "max_batch", "max_page", "max_attempts"])
@pytest.mark.parametrize("value", [0, -1, 2**31, 1.5, True])
def test_limits_refuse_bounds_that_refuse_everything_or_overflow(field: str, value: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        Limits(**{field: value})  # type: ignore[arg-type]
    assert raised.value.field == field
    assert getattr(Limits(**{field: 2**31 - 1}), field) == 2**31 - 1


def test_unknown_state_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="unknown state 'lost'") as raised:
        parse_state("lost")
    assert raised.value.field == "state"
    with pytest.raises(InvalidArgument) as raised:
        check_query(JobQuery(state="lost"), Limits())  # type: ignore[arg-type]
    assert raised.value.field == "state"
    with pytest.raises(InvalidArgument) as raised:
        check_query(JobQuery(limit=0), Limits())
    assert raised.value.field == "limit"
