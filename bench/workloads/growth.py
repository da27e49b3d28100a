"""G growth: drain rate, cost per job and enqueue-to-start latency as the backlog grows
(10,000 -> 100,000 -> 1,000,000 queued jobs) and as worker processes are added (1 -> 16).

Each point: a fresh SQLite file is filled with N no-op jobs in local mode (`App("sqlite:///...")`,
`aenqueue_many` in batches of 5,000: ~30,000 jobs/s, so 1,000,000 in ~35 s) and the app closed
before `shoal server` opens the file (the store's flock on `<file>.lock` makes the server the only
writer from then on). The queue is paused, the worker processes connect, and the clock starts
at ResumeQueue. It stops at the first poll of GetQueueStats (every 50 ms, or every N / 10^6 s
past 50,000 jobs: 1 s at 1,000,000, where one stats query takes ~20 ms) that sees every job
finished.

Probes: while the backlog drains, the bench process enqueues `stamp(time.time())` jobs one
unary Enqueue at a time, 50 per second on an absolute timetable, at priority 10 into the same
queue. A claim takes the highest priority first (`ORDER BY priority DESC, run_at, id` on the
`jobs_ready` index), so a probe jumps the backlog: its start minus enqueue time is what an
urgent job waits with N jobs queued ahead of it (a slot freeing up, the next claim, the trip
to the worker), p50/p99/max in ms. Probing stops at the first poll that sees no job queued.

Reported per point, as one JSON line whose value is the drain rate, (N + probes) / clock in
jobs/s, and whose config holds: the server's CPU seconds (user + system, all threads, from
/proc/PID/stat) over the clock per job in us, less the polls' (a poll's CPU is measured
before the drain, 30 polls on the paused full queue: a stats query scans the queue, so its
cost grows with N; `server_cpu_with_polls_us_per_job` keeps them), the same summed over the
worker processes, the probe percentiles and count, and the load average. The CPU per job
includes the probes' enqueues (a few % at 50/s): a cost per second of drain, so a constant
share per job along a series; a cost per job that grows with the backlog is the store's or
the server's.

Series "backlog": N = 10,000, 100,000 (quick) and 1,000,000 (full), 2 worker processes x 1024
(W2's configuration). Series "workers": a fixed backlog (20,000; quick 10,000) drained by 1, 2,
4, 8 and 16 worker processes holding 256 jobs in flight in total (1x256, 2x128, 4x64, 8x32,
16x16), so only the number of processes changes. On 2 cores 16 processes compete with the
server for the CPU: the rate may drop; it must not collapse, and every job must finish.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.workloads._app import make_app
from bench.workloads._harness import Admin, Emit, cpu_seconds, median, percentiles, workspace
from bench.workloads.w2_drain import fill

PROBE_PRIORITY = 10
PROBE_RATE = 50.0
#: A queue no worker serves: the probe producer's first call (connecting) lands there.
WARMUP_QUEUE = "growth-warmup"
#: W2's worker configuration, for the backlog series.
BACKLOG_PROCESSES = 2
BACKLOG_CONCURRENCY = 1024


@dataclass
class Drain:
    """What one drain measured (CPU in seconds)."""

    jobs: int
    seconds: float
    server_cpu: float
    worker_cpu: float
    polls: int
    poll_cpu: float  # the server's, per GetQueueStats, measured before the drain
    latencies: list[float] = field(default_factory=list)

    @property
    def server_net(self) -> float:
        """The server's CPU seconds less its polls'."""
        return max(0.0, self.server_cpu - self.polls * self.poll_cpu)


async def _probe(variant: Any, stop: asyncio.Event, rate: float) -> int:
    """Enqueue probes at `rate` until `stop` (at least one); how many were enqueued."""
    sent = 0
    t0 = time.perf_counter()
    while True:
        await variant.aenqueue(time.time())
        sent += 1
        delay = t0 + sent / rate - time.perf_counter()
        if stop.is_set():
            return sent
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return sent
            except TimeoutError:
                pass


def _poll_cost(admin: Admin, server_pid: int, polls: int = 30) -> float:
    """The server's CPU seconds per GetQueueStats. Its counts scan the queue (~20 ms at
    1,000,000 jobs), so the polls' share per job grows with the backlog: it is measured
    here, with the queue paused and full, and taken out of the server's CPU per job.
    """
    before = cpu_seconds(server_pid)
    for _ in range(polls):
        admin.counts()
    return (cpu_seconds(server_pid) - before) / polls


async def _drain(
    server: Any, admin: Admin, n: int, workers: list[int], rate: float, timeout: float
) -> Drain:
    """Resume the queue, probe while jobs are queued, wait for every job."""
    app = make_app(server.url)
    async with app:
        stamp = app.find_task("stamp")
        assert stamp is not None
        await stamp.options(queue=WARMUP_QUEUE).aenqueue(0.0)
        probes = stamp.options(priority=PROBE_PRIORITY)
        every = max(0.05, n / 1_000_000)  # detection error <= ~1% of the drain past 50,000
        server_pid = server.child.proc.pid
        poll_cpu = _poll_cost(admin, server_pid)
        server_cpu, worker_cpu = cpu_seconds(server_pid), sum(map(cpu_seconds, workers))
        stop = asyncio.Event()
        started = time.perf_counter()
        await asyncio.to_thread(admin.resume)
        prober = asyncio.create_task(_probe(probes, stop, rate))
        sent = polls = 0
        while True:
            counts = await asyncio.to_thread(admin.counts)
            polls += 1
            finished = counts.get("succeeded", 0) + counts.get("failed", 0)
            if not stop.is_set() and counts.get("queued", 0) == 0:
                stop.set()
                sent = await prober
            if stop.is_set() and finished >= n + sent:
                break
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{counts} after {timeout}s, expected {n} + probes finished")
            await asyncio.sleep(every)
        seconds = time.perf_counter() - started
        server_cpu = cpu_seconds(server_pid) - server_cpu
        worker_cpu = sum(map(cpu_seconds, workers)) - worker_cpu
        return Drain(n + sent, seconds, server_cpu, worker_cpu, polls, poll_cpu)


def _latencies(log: Path) -> list[float]:
    """Start minus enqueue of every probe, in ms."""
    values = []
    for line in log.read_text().splitlines():
        enqueued, started = line.split()
        values.append((float(started) - float(enqueued)) * 1000)
    return values


def drain(
    n: int, *, processes: int, concurrency: int, rate: float = PROBE_RATE, timeout: float = 0
) -> Drain:
    """Fill `n` jobs, start the server and `processes` workers, drain with probes."""
    timeout = timeout or 60 + n / 2000  # 1,000,000 jobs: 560 s, so >= ~1,800 jobs/s
    with workspace() as (tmp, procs):
        db = tmp / "growth.db"
        asyncio.run(fill(f"sqlite:///{db}", n, batch=5000))
        server = procs.server(db)
        admin = Admin(server.address)
        try:
            admin.pause()
            log = tmp / "probes.log"
            log.touch()
            children = procs.workers(server.url, processes, concurrency=concurrency, log=log)
            pids = [child.proc.pid for child in children]
            result = asyncio.run(_drain(server, admin, n, pids, rate, timeout))
        finally:
            admin.close()
        procs.stop_all()  # workers flush and close the probe log
        result.latencies = _latencies(log)
        assert len(result.latencies) == result.jobs - n, (len(result.latencies), result.jobs)
        return result


def _emit(emit: Emit, name: str, result: Drain, **config: Any) -> None:
    latency = percentiles(result.latencies)
    emit(
        "G",
        name,
        result.jobs / result.seconds,
        "jobs/s",
        **config,
        server_cpu_us_per_job=round(result.server_net / result.jobs * 1e6, 1),
        server_cpu_with_polls_us_per_job=round(result.server_cpu / result.jobs * 1e6, 1),
        poll_cpu_ms=round(result.poll_cpu * 1000, 2),
        polls=result.polls,
        worker_cpu_us_per_job=round(result.worker_cpu / result.jobs * 1e6, 1),
        probe_p50_ms=round(latency["p50"], 2),
        probe_p99_ms=round(latency["p99"], 2),
        probe_max_ms=round(latency["max"], 2),
        probes=len(result.latencies),
        probe_rate=PROBE_RATE,
        probe_priority=PROBE_PRIORITY,
        seconds=round(result.seconds, 2),
        load=round(os.getloadavg()[0], 2),
    )


def run(
    emit: Emit,
    *,
    backlogs: tuple[int, ...] = (10_000, 100_000),
    worker_counts: tuple[int, ...] = (1, 2, 4, 8, 16),
    worker_backlog: int = 20_000,
    in_flight: int = 256,
) -> None:
    """Both series, one run: a JSON line per point."""
    for n in backlogs:
        result = drain(n, processes=BACKLOG_PROCESSES, concurrency=BACKLOG_CONCURRENCY)
        point = f"{BACKLOG_PROCESSES}x{BACKLOG_CONCURRENCY}"
        _emit(emit, f"backlog {n:,} ({point})", result, series="backlog", n=n, workers=point)
    for count in worker_counts:
        concurrency = max(1, in_flight // count)
        result = drain(worker_backlog, processes=count, concurrency=concurrency)
        point = f"{count}x{concurrency}"
        name = f"workers {point} ({worker_backlog:,} queued)"
        _emit(emit, name, result, series="workers", n=worker_backlog, workers=point)


#: The table's columns after the rate: title, config key, format.
_COLUMNS = (
    ("server CPU us/job", "server_cpu_us_per_job", "{:,.0f}"),
    ("workers CPU us/job", "worker_cpu_us_per_job", "{:,.0f}"),
    ("probe p50 ms", "probe_p50_ms", "{:,.1f}"),
    ("probe p99 ms", "probe_p99_ms", "{:,.1f}"),
    ("probes", "probes", "{:,.0f}"),
    ("load", "load", "{:.1f}"),
)


def growth_table(records: list[dict[str, Any]]) -> str:
    """G's points, one row each: medians over runs (the drain rate also min-max; it and the
    server's CPU per job also as a fraction of the first point of their series)."""
    points: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["workload"] == "G":
            points.setdefault(record["name"], []).append(record)
    titles = " | ".join(title for title, _, _ in _COLUMNS)
    lines = [
        f"| G point | drain jobs/s | min-max | rate vs first | CPU/job vs first | {titles} |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(_COLUMNS),
    ]
    first: dict[str, tuple[float, float]] = {}
    for name, items in points.items():
        rates = [item["value"] for item in items]
        rate = median(rates)
        cpu = median([item["config"]["server_cpu_us_per_job"] for item in items])
        base_rate, base_cpu = first.setdefault(items[0]["config"]["series"], (rate, cpu))
        cells = " | ".join(
            form.format(median([item["config"][key] for item in items]))
            for _, key, form in _COLUMNS
        )
        lines.append(
            f"| {name} | {rate:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | "
            f"{rate / base_rate:.2f} | {cpu / base_cpu:.2f} | {cells} |"
        )
    return "\n".join(lines)
