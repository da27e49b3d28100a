"""Reference limits measured in the same run as the workloads: what the storage can do at all.

- raw sqlite3 (WAL, synchronous=NORMAL) on a minimal jobs table: insert N job rows, then
  update each to done; one transaction per job, and 100 jobs per transaction; jobs/s counts a
  job once (its insert and its update). The ids are time-ordered, as shoal's (UUIDv7 text):
  until 2026-11-23 they were random (uuid4), so every insert landed at a random place of the
  primary key's b-tree, and the batched loop measured ~56,000 jobs/s instead of ~170,000.
- the same loop on shoal's own schema (its migrations and indexes), as `bench.store_bench`.
- `redis-benchmark -t lpush,rpop -q` against 127.0.0.1:6379, when the binary exists and a
  server answers there: with its default 50 clients, and with one client (`-c 1`: one call at
  a time, each waiting for its reply). The issue's reference ("LPUSH 47,000/s from one
  client") is the second: it is bound by the loopback round trip, which is what a producer
  waiting for each acknowledgement, and a job's way from producer to worker, are bound by too.
  Until 2026-12-07 only the 50-client line was measured.
- a Python round trip: a 120-byte message to an echo server on uvloop in another process and
  back, one at a time, from a uvloop client (`bench._echo`). It is the floor of any call from
  one Python process to another and back on this machine, with nothing done in between: what a
  remote enqueue acknowledged one call at a time could reach if shoal cost nothing at all.

Run alone: `.venv/bin/python -m bench.reference [--n 100000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.workloads._harness import workspace
from shoal.core.ids import new_job_id

_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, queue TEXT NOT NULL, task TEXT NOT NULL, payload BLOB,
    state TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL
)
"""


def raw_sqlite(path: Path, n: int, per_transaction: int) -> float:
    """Insert `n` rows then mark each done, `per_transaction` jobs per transaction: jobs/s."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_SCHEMA)
    ids = [new_job_id() for _ in range(n)]
    now = time.time()
    started = time.perf_counter()
    for sql, params in (
        (
            "INSERT INTO jobs VALUES (?, 'default', 'noop', X'7B7D', 'queued', ?, NULL)",
            [(job_id, now) for job_id in ids],
        ),
        (
            "UPDATE jobs SET state = 'succeeded', finished_at = ? WHERE id = ?",
            [(now, job_id) for job_id in ids],
        ),
    ):
        for start in range(0, n, per_transaction):
            conn.execute("BEGIN")
            for row in params[start : start + per_transaction]:
                conn.execute(sql, row)
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


def store_schema(path: Path, n: int, per_transaction: int) -> float:
    """The same loop on shoal's schema (bench.store_bench's reference): jobs/s."""
    from bench.store_bench import bench_raw

    return n / bench_raw(path, n, per_transaction, "NORMAL")


def redis(n: int = 100_000, clients: int = 50) -> dict[str, float]:
    """LPUSH and RPOP requests/s from redis-benchmark with `clients` connections, and their
    median latency in ms (`LPUSH p50`); {} without a binary or a server.
    """
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {}
    command = [binary, "-h", "127.0.0.1", "-p", "6379", "-t", "lpush,rpop", "-q"]
    try:
        out = subprocess.run(
            [*command, "-n", str(n), "-c", str(clients)],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    except (subprocess.TimeoutExpired, OSError):
        return {}
    rates = {}
    line = r"(LPUSH|RPOP)\S*: ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?"
    for name, value, p50 in re.findall(line, out):
        rates[name] = float(value)
        if p50:
            rates[f"{name} p50"] = float(p50)
    return rates


class _Answer(asyncio.Protocol):
    """Resolves `waiter` once `expected` bytes came back (TCP may split an answer)."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None
        self.expected = 0

    def data_received(self, data: bytes) -> None:
        self.expected -= len(data)
        if self.expected <= 0 and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def _round_trips(port: int, n: int) -> float:
    loop = asyncio.get_running_loop()
    transport, answer = await loop.create_connection(_Answer, "127.0.0.1", port)
    message = b"x" * 120
    started = time.perf_counter()
    for _ in range(n):
        answer.waiter, answer.expected = loop.create_future(), len(message)
        transport.write(message)
        await answer.waiter
    elapsed = time.perf_counter() - started
    transport.close()
    return n / elapsed


def python_round_trip(n: int = 20_000) -> float:
    """Round trips/s between two Python processes on uvloop (see the module docstring)."""
    with workspace() as (_, procs):
        echo = procs.spawn("echo", [sys.executable, "-m", "bench._echo", "600"])
        port = int(echo.wait_line(r"^\d+$", timeout=30).group(0))
        return uvloop.run(_round_trips(port, n))


def run(emit: Any, *, n: int = 100_000) -> None:
    """Every reference limit (one run)."""
    with tempfile.TemporaryDirectory(prefix="shoal-ref-") as tmp:
        for per, count in ((100, n), (1, n // 5)):
            rate = raw_sqlite(Path(tmp) / f"raw{per}.db", count, per)
            emit("REF", f"raw sqlite3, {per} job/transaction", rate, "jobs/s", n=count)
        for per, count in ((100, n), (1, n // 5)):
            rate = store_schema(Path(tmp) / f"schema{per}.db", count, per)
            emit("REF", f"raw sqlite3 on shoal's schema, {per}/tx", rate, "jobs/s", n=count)
    for name, rate in redis().items():
        if not name.endswith("p50"):
            emit("REF", f"redis-benchmark {name}", rate, "requests/s", n=100_000)
    for name, rate in redis(n // 5, clients=1).items():
        unit = "ms" if name.endswith("p50") else "requests/s"
        emit("REF", f"redis-benchmark {name}, one client", rate, unit, n=n // 5, clients=1)
    rate = python_round_trip(n // 5)
    emit("REF", "python uvloop round trip, one client", rate, "requests/s", n=n // 5)


def main() -> None:
    """Print the reference limits as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()

    def emit(workload: str, name: str, value: float, unit: str, **config: Any) -> None:
        print(json.dumps({"workload": workload, "name": name, "value": value, "unit": unit}))

    run(emit, n=args.n)


if __name__ == "__main__":
    main()
