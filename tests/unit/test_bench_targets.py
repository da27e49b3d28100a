"""The issue's targets scale with the reference measured in the same run (bench.targets)."""

from __future__ import annotations

from bench.targets import ISSUE_REFERENCES, ONE_CLIENT, RAW_100, TARGETS, target_for


def test_a_rate_scales_with_its_reference_and_a_latency_against_it() -> None:
    here = {ONE_CLIENT: ISSUE_REFERENCES[ONE_CLIENT] / 5, RAW_100: ISSUE_REFERENCES[RAW_100] / 2}
    single = target_for("W1", "enqueue remote (native), one call at a time")
    latency = target_for("W3", "latency 100/s p99")
    drain = target_for("W2", "drain 10,000 queued")
    assert single is not None and latency is not None and drain is not None
    assert single.scaled(here) == 12_000 / 5  # a machine 5x slower at round trips
    assert latency.scaled(here) == 0.9 * 5  # allows 5x the latency
    assert drain.scaled(here) == 22_000 / 2
    assert drain.met(11_000, here) and not drain.met(10_999, here)
    assert latency.met(4.5, here) and not latency.met(4.6, here)


def test_a_target_without_its_reference_is_not_judged() -> None:
    single = target_for("W1", "enqueue local, one call at a time")
    assert single is not None and single.scaled({}) is None and single.met(1e9, {}) is None
    jitter = target_for("W4", "every 1000 ms: jitter p99 ms")
    assert jitter is not None and jitter.scaled({}) == 0.7  # no reference: kept as it is


def test_every_target_names_a_known_reference() -> None:
    assert all(t.reference is None or t.reference in ISSUE_REFERENCES for t in TARGETS)
