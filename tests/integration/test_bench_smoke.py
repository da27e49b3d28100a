"""The benchmark workloads run end to end at a tiny size, so CI proves `bench/` still works.

Each runs its real processes (a `shoal server`, SDK worker processes) at N = 200 or for a
second or two; the numbers are not checked, only that every measurement came out and that the
correctness counts (nothing lost, nothing doubled) hold.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from bench import enqueue_cpu, gil_share, reference
from bench.run import table
from bench.workloads import (
    growth,
    w1_enqueue,
    w2_drain,
    w3_latency,
    w4_periodic,
    w5_crash,
    w6_footprint,
)
from bench.workloads._harness import emitter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _measure(step: Any, **kwargs: Any) -> dict[str, float]:
    records: list[dict[str, Any]] = []
    step(emitter(records, None), **kwargs)
    assert records
    assert all(math.isfinite(r["value"]) for r in records), records
    assert "| shoal (SQLite) |" in table(records, 1) or "| reference |" in table(records, 1)
    return {r["name"]: r["value"] for r in records}


def test_reference() -> None:
    values = _measure(reference.run, n=2000)
    assert values["raw sqlite3, 100 job/transaction"] > 0
    assert values["python uvloop round trip, one client"] > 0


def test_w1_enqueue() -> None:
    values = _measure(w1_enqueue.run, n=200, batch=50)
    # one call at a time, bulk and pipelined over each transport; one at a time and bulk locally
    assert len(values) == 8 and all(v > 0 for v in values.values())
    assert "enqueue remote (native), one call at a time" in values


def test_enqueue_cpu() -> None:
    rows = enqueue_cpu.run(jobs=200, batch=50, single=300)
    assert set(rows) == {"bulk 50", "one call at a time"}
    for row in rows.values():
        assert row["jobs/s"] > 0 and row["wall us"] > 0
        assert {"producer user", "producer sys"} <= set(row)
    # CPU comes in 10 ms ticks: at this size one row may have none to show, not both
    assert sum(value for row in rows.values() for key, value in row.items() if "server" in key) > 0


def test_gil_share_restores_the_switch_interval() -> None:
    before = sys.getswitchinterval()
    row = gil_share.measure(batches=4, size=50, switch=0.0005)
    assert sys.getswitchinterval() == before
    assert row["alone"] > 0 and row["beside"] > 0
    assert row["held"] >= 0 and row["noise"] >= 0


def test_w2_drain() -> None:
    values = _measure(w2_drain.run, sizes=(200,), processes=1, concurrency=8)
    assert values["drain 200 queued"] > 0


def test_w3_latency() -> None:
    values = _measure(w3_latency.run, rates=(100,), seconds=1.0)
    assert 0 <= values["latency 100/s p50"] <= values["latency 100/s max"]


def test_w4_periodic() -> None:
    values = _measure(w4_periodic.run, seconds_1s=2.0, seconds_100ms=1.0)
    assert values["every 100 ms: fires"] >= 5
    assert values["every 100 ms: duplicates"] == 0 and values["every 1000 ms: duplicates"] == 0


@pytest.mark.crash
def test_w5_crash() -> None:
    values = _measure(w5_crash.run, n=200, seconds=2.0, kill_after=0.5)
    assert values["worker kill -9: completions"] == 1
    assert values["worker kill -9: succeeded"] == 1
    assert values["server kill -9: jobs succeeded"] == 200
    assert values["server kill -9: jobs lost (never ran)"] == 0


def test_w6_footprint() -> None:
    values = _measure(w6_footprint.run, backlog=1000)
    assert values["server RSS idle"] > 0 and values["server start to ready line"] > 0


def test_growth() -> None:
    records: list[dict[str, Any]] = []
    growth.run(
        emitter(records, None),
        backlogs=(300,),
        worker_counts=(1, 2),
        worker_backlog=300,
        in_flight=16,
    )
    assert [r["name"] for r in records] == [
        f"backlog 300 ({growth.BACKLOG_PROCESSES}x{growth.BACKLOG_CONCURRENCY})",
        "workers 1x16 (300 queued)",
        "workers 2x8 (300 queued)",
    ]
    for record in records:
        config = record["config"]
        assert record["value"] > 0 and config["server_cpu_us_per_job"] >= 0, record
        assert config["probes"] >= 1 and 0 <= config["probe_p50_ms"] <= config["probe_max_ms"]
    assert "| workers 2x8 (300 queued) |" in table(records, 1)
