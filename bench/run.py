"""The benchmark runner: shoal on workloads W1-W6 and the reference limits, in one run.

    .venv/bin/python -m bench.run [--quick|--full] [--only W1,W3] [--runs 3] [--json FILE]

Prints one JSON line per measurement as it is taken, then a markdown table: each measurement's
median and min-max over the runs, with the configuration, versions, date and machine.
`--quick` (the default) fits in about ten minutes on 2 cores; `--full` adds the
1,000,000-job backlogs, the 15 s / 30 s durations of WORKLOADS.md and G (growth: backlogs and
worker counts; ~45 s a run in its quick form, so `--quick` runs it only when `--only` names it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import reference, targets
from bench.workloads import (
    _harness,
    growth,
    w1_enqueue,
    w2_drain,
    w3_latency,
    w4_periodic,
    w5_crash,
    w6_footprint,
)
from bench.workloads._harness import ROOT, Emit, emitter, median

#: Workloads `--quick` runs only when `--only` names them (too long for the ten-minute set).
FULL_ONLY = ("G",)
#: Worker configuration of W2 (the best measured on 2 cores, see bench/README.md). 128 was
#: the best while a slot waited for its outcome's ack; since it does not, more jobs in flight
#: amortize each message and commit (60,000 jobs, 3 interleaved rounds: 2x128 6,715, 2x512
#: 8,868, 2x1024 9,357 jobs/s medians).
DRAIN_PROCESSES = 2
DRAIN_CONCURRENCY = 1024


def plan(full: bool) -> dict[str, Callable[[Emit], None]]:
    """What each workload runs in this mode."""
    return {
        "REF": lambda emit: reference.run(emit, n=100_000),
        "W1": lambda emit: w1_enqueue.run(emit, n=10_000, batch=500),
        "W2": lambda emit: w2_drain.run(
            emit,
            sizes=(10_000, 100_000, 1_000_000) if full else (10_000, 100_000),
            processes=DRAIN_PROCESSES,
            concurrency=DRAIN_CONCURRENCY,
        ),
        "W3": lambda emit: w3_latency.run(emit, rates=(100, 1000), seconds=15 if full else 5),
        "W4": lambda emit: w4_periodic.run(
            emit, seconds_1s=30 if full else 10, seconds_100ms=30 if full else 10
        ),
        "W5": lambda emit: w5_crash.run(emit, n=10_000),
        "W6": lambda emit: w6_footprint.run(emit, backlog=1_000_000 if full else 100_000),
        "G": lambda emit: growth.run(
            emit,
            backlogs=(10_000, 100_000, 1_000_000) if full else (10_000, 100_000),
            worker_backlog=20_000 if full else 10_000,
        ),
    }


def machine() -> str:
    """Cores, memory, OS."""
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{os.cpu_count()} cores, {memory} RAM, {platform.platform()}"


def versions() -> str:
    """Python, SQLite, grpcio, and the shoal commit."""
    import grpc

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        commit = "?"
    return (
        f"shoal {commit}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"grpcio {grpc.__version__}"
    )


def table(records: list[dict[str, Any]], runs: int) -> str:
    """The markdown table: one row per measurement, median and min-max over runs, and where
    the issue sets a target, that target scaled to this run's references (`bench.targets`).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["workload"], record["name"]), []).append(record)
    references = {
        name: median([r["value"] for r in items])
        for (workload, name), items in groups.items()
        if workload == "REF"
    }
    lines = [
        f"| system | workload | measurement | median of {runs} | min-max | unit "
        "| issue target, scaled to this run | met |",
        "|---|---|---|---:|---:|---|---:|---|",
    ]
    for (workload, name), items in groups.items():
        values = [item["value"] for item in items]
        target, met = "", ""
        aim = targets.target_for(workload, name)
        if aim is not None:
            scaled = aim.scaled(references)
            reached = aim.met(median(values), references)
            sign = ">=" if aim.higher_is_better else "<="
            target = "" if scaled is None else f"{sign} {_fmt(scaled)}"
            met = {True: "yes", False: "no", None: ""}[reached]
        system = "reference" if workload == "REF" else "shoal (SQLite)"
        lines.append(
            f"| {system} | {workload} | {name} | {_fmt(median(values))} | "
            f"{_fmt(min(values))}-{_fmt(max(values))} | {items[0]['unit']} | {target} | {met} |"
        )
    if any(workload == "G" for workload, _ in groups):
        lines += ["", growth.growth_table(records)]
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


CONFIGURATION = f"""\
Configuration: shoal server (`shoal server --store sqlite:///... --grpc-listen 127.0.0.1:0
--native-listen 127.0.0.1:0`, uvloop, durable SQLite store: WAL, synchronous=NORMAL), a fresh
database per run. Producers: the Python SDK on uvloop (`await task.aenqueue()` one at a time,
`app.aenqueue_many` for bulk) in the bench process, W1 over both the native framing
(`shoal://`) and gRPC (`grpc://`), the other workloads over {{transport}}; local mode is
`App("sqlite:///...")` in that process. Workers: SDK `Worker` processes, pool=asyncio (async
no-op tasks); W2 uses {DRAIN_PROCESSES} processes x concurrency {DRAIN_CONCURRENCY} (the best of
2x128, 2x256, 2x512, 2x1024, 2x2048, 1x256 and 3x128 over the native framing), W3/W4 one
process (64/16), W5 two; G {DRAIN_PROCESSES}x{DRAIN_CONCURRENCY} for its backlogs, 256 in flight
over 1-16 processes, probes at priority 10
(bench/workloads/growth.py). W2 detects the end of a drain from indexed one-job listings.
Reference: bench/reference.py."""


def main(argv: list[str] | None = None) -> None:
    """Run the workloads and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the ten-minute set (default)")
    mode.add_argument("--full", action="store_true", help="everything, 1,000,000-job backlogs")
    parser.add_argument("--only", default="", help="comma-separated ids: REF,W1,...,W6,G")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also append JSON lines here")
    parser.add_argument("--table", type=Path, default=None, help="only print the table of a file")
    parser.add_argument(
        "--transport",
        choices=_harness.TRANSPORTS,
        default=_harness.TRANSPORT,
        help="how W2-W6 and G reach the server: native (shoal://, default) or grpc",
    )
    args = parser.parse_args(argv)
    _harness.TRANSPORT = args.transport
    if args.table is not None:
        records = [json.loads(line) for line in args.table.read_text().splitlines() if line]
        print(table(records, args.runs))
        return
    steps = plan(args.full)
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()] or [
        workload for workload in steps if args.full or workload not in FULL_ONLY
    ]
    unknown = set(wanted) - set(steps)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {list(steps)}")
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.monotonic()
    with open(args.json, "a") if args.json else open(os.devnull, "w") as sink:
        emit = emitter(records, sink if args.json else None)
        for run in range(args.runs):
            for workload in wanted:
                print(f"# run {run + 1}/{args.runs}: {workload}", file=sys.stderr, flush=True)
                try:
                    steps[workload](emit)
                except Exception:  # one failed run must not lose the others' numbers
                    failures.append(f"run {run + 1} {workload}: {traceback.format_exc()}")
                    print(failures[-1], file=sys.stderr, flush=True)
    print()
    print(f"## shoal bench ({'full' if args.full else 'quick'}), {dt.date.today().isoformat()}")
    print()
    print(f"Machine: {machine()}. Versions: {versions()}.")
    print(f"Took {time.monotonic() - started:.0f} s.")
    print()
    print(CONFIGURATION.format(transport=_harness.TRANSPORT))
    print()
    print(table(records, args.runs))
    if failures:
        print(f"\n{len(failures)} run(s) failed (their tracebacks are on standard error).")
        sys.exit(1)


if __name__ == "__main__":
    main()
