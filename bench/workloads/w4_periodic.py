"""W4 periodic: a schedule every 1 s, and every 100 ms, on a real server with one idle worker.

The schedule is created over gRPC (the SDK has no schedule API, so the generated stubs are used
directly). Each fire's job records its id and its start time; its ideal slot is the job's
`run_at` (read back with ListJobs), which the bench checks lies on the schedule's grid. Jitter
is start minus slot. Missed fires are the grid points between the first and the last slot
without a job, plus the whole periods before the first and after the last one; duplicates are
slots with two jobs, or a job that started twice.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path

from bench.workloads._harness import Admin, Emit, percentiles, workspace


def _fires(log: Path) -> dict[str, list[float]]:
    starts: dict[str, list[float]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            job_id, started = line.split()
            starts.setdefault(job_id, []).append(float(started))
    return starts


def measure(period_ms: int, seconds: float) -> dict[str, float]:
    """One run: fires, ideal, missed, duplicates, jitter percentiles (ms)."""
    from shoal.protocols.grpc.gen.shoal.v1 import schedules_pb2, schedules_pb2_grpc

    with workspace() as (tmp, procs):
        server = procs.server(tmp / "w4.db")
        log = tmp / "ticks.log"
        procs.worker(server.url, concurrency=16, log=log)
        admin = Admin(server.address)
        try:
            schedules = schedules_pb2_grpc.ScheduleServiceStub(admin.channel)
            began = time.time()
            schedules.CreateSchedule(
                schedules_pb2.ScheduleSpec(
                    id="w4", task="tick", queue="bench", every_ms=period_ms, payload=b"[]"
                ),
                timeout=30,
            )
            time.sleep(seconds)
            schedules.DeleteSchedule(schedules_pb2.ScheduleRef(id="w4"), timeout=30)
            ended = time.time()
            time.sleep(0.5)
            jobs = admin.all_jobs()
            admin.wait_done(len(jobs), timeout=30)
        finally:
            admin.close()
        starts = _fires(log)
    period = period_ms / 1000
    slots = sorted(job.run_at for job in jobs)
    first = slots[0] if slots else 0.0  # the grid is anchored at the schedule's creation
    per_slot = Counter(round((slot - first) / period) for slot in slots)
    grid = sorted(per_slot)
    ideal = int((ended - began) / period)
    missed = sum(b - a - 1 for a, b in itertools.pairwise(grid))
    missed += max(0, ideal - (len(grid) + missed))
    duplicates = sum(count - 1 for count in per_slot.values())
    duplicates += sum(len(runs) - 1 for runs in starts.values())
    jitter = [
        (runs[0] - job.run_at) * 1000 for job in jobs if (runs := starts.get(job.id)) is not None
    ]
    off_grid = max(
        (abs((s - first) / period - round((s - first) / period)) * period * 1000 for s in slots),
        default=0,
    )
    return {
        "fires": len(jobs),
        "ideal": ideal,
        "missed": missed,
        "duplicates": duplicates,
        "slot off grid max ms": off_grid,
        **{f"jitter {k} ms": v for k, v in percentiles(jitter).items() if k != "p95"},
    }


def run(emit: Emit, *, seconds_1s: float = 30.0, seconds_100ms: float = 30.0) -> None:
    """Measure a 1 s and a 100 ms schedule (one run each)."""
    for period_ms, seconds in ((1000, seconds_1s), (100, seconds_100ms)):
        result = measure(period_ms, seconds)
        for key, value in result.items():
            unit = "ms" if key.endswith("ms") else "count"
            emit("W4", f"every {period_ms} ms: {key}", value, unit, seconds=seconds)
