"""The issue's targets, scaled to this machine by the reference each one is bound by.

Issue 10 gives absolute figures measured on another machine, beside the reference limits of
that machine: a raw sqlite3 loop (254,000 jobs/s at 100 per transaction, 30,000 at one) and
`redis-benchmark` LPUSH from one client (47,000 requests/s: one call at a time, so about 21 µs
a round trip). What counts is the ratio, so each target here is scaled by the reference that
bounds its workload, measured in the same run:

- work bound by SQLite (bulk enqueue, a local enqueue, a drain): by the raw sqlite3 loop with
  the same number of jobs per transaction;
- work bound by round trips between processes (a remote producer waiting for each
  acknowledgement, a job's way from producer through server to worker): by LPUSH from one
  client. A rate scales with it; a latency scales inversely.

Targets with no reference (a schedule's jitter, a re-run after a kill, footprints) are kept as
they are. `scaled()` gives the target for this run, `met()` whether a median reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ISSUE_REFERENCES", "TARGETS", "Target", "target_for"]

RAW_100 = "raw sqlite3, 100 job/transaction"
RAW_1 = "raw sqlite3, 1 job/transaction"
ONE_CLIENT = "redis-benchmark LPUSH, one client"
#: The references as the issue measured them.
ISSUE_REFERENCES = {RAW_100: 254_000.0, RAW_1: 30_000.0, ONE_CLIENT: 47_000.0}


@dataclass(frozen=True, slots=True)
class Target:
    """One target of the issue for one measurement."""

    workload: str
    #: The measurement's name as its workload emits it.
    name: str
    value: float
    #: The REF measurement it scales with; None: kept as it is.
    reference: str | None = None
    #: A rate (more is better) or a latency / time / size (less is better).
    higher_is_better: bool = True

    def scaled(self, references: dict[str, float]) -> float | None:
        """The target on this machine, or None when its reference was not measured."""
        if self.reference is None:
            return self.value
        here = references.get(self.reference)
        if not here:
            return None
        factor = here / ISSUE_REFERENCES[self.reference]
        return self.value * factor if self.higher_is_better else self.value / factor

    def met(self, median: float, references: dict[str, float]) -> bool | None:
        """Whether `median` reaches the scaled target (None: no reference to scale by)."""
        target = self.scaled(references)
        if target is None:
            return None
        return median >= target if self.higher_is_better else median <= target


def _w1(name: str, value: float, reference: str) -> list[Target]:
    return [
        Target("W1", name.format(where=where), value, reference)
        for where in ("remote (native)", "remote (grpc)")
    ]


TARGETS: list[Target] = [
    *_w1("enqueue {where}, one call at a time", 12_000, ONE_CLIENT),
    *_w1("enqueue {where}, bulk 500", 100_000, RAW_100),
    Target("W1", "enqueue local, one call at a time", 30_000, RAW_1),
    Target("W1", "enqueue local, bulk 500", 200_000, RAW_100),
    Target("W2", "drain 10,000 queued", 22_000, RAW_100),
    Target("W2", "drain 100,000 queued", 22_000, RAW_100),
    Target("W2", "drain 1,000,000 queued", 0.8 * 22_000, RAW_100),
    Target("W3", "latency 100/s p99", 0.9, ONE_CLIENT, higher_is_better=False),
    Target("W3", "latency 1000/s p99", 3.0, ONE_CLIENT, higher_is_better=False),
    Target("W4", "every 1000 ms: jitter p99 ms", 0.7, higher_is_better=False),
    Target("W4", "every 100 ms: missed", 0, higher_is_better=False),
    Target("W4", "every 100 ms: duplicates", 0, higher_is_better=False),
    Target("W4", "every 100 ms: jitter p99 ms", 2.0, higher_is_better=False),
    Target("W5", "worker kill -9: re-run after kill", 100, higher_is_better=False),
    Target("W5", "server kill -9: jobs lost (never ran)", 0, higher_is_better=False),
    Target("W6", "server start to ready line", 1.0, higher_is_better=False),
    Target("W6", "server RSS idle", 80 / 1.048576, higher_is_better=False),  # 80 MB in MiB
]
_BY_NAME = {(target.workload, target.name): target for target in TARGETS}


def target_for(workload: str, name: str) -> Target | None:
    """The issue's target for this measurement, if it has one."""
    return _BY_NAME.get((workload, name))
