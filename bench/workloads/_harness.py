"""Processes of a benchmark run: a `shoal server`, worker processes, and their clean-up.

Every child starts in its own process group, and `Procs.stop_all` kills each group, so a run
that fails half-way leaves nothing behind. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
#: How the producers and workers reach a server: `native` (shoal://, the SDK's fastest path)
#: or `grpc` (grpc://). `python -m bench.run --transport` sets it; W1 measures both anyway.
TRANSPORTS = ("native", "grpc")
TRANSPORT = os.environ.get("SHOAL_BENCH_TRANSPORT", "native")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a server that must come back on the same port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads (from /proc/PID/stat)."""
    # the fields after the command name, which is in parentheses and may hold spaces
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A child process in its own process group."""

    name: str
    proc: subprocess.Popen[str]
    stderr: Path | None = None
    pumping: threading.Thread | None = None
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # end of stream marker
            self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching `pattern`; `TimeoutError` if none comes in time."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    found = regex.search(line)
                    if found:
                        return found
                seen = len(self.lines)
                if self.lines and self.lines[-1] == "" and self.proc.poll() is not None:
                    tail = self.stderr.read_text()[-2000:] if self.stderr else ""
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {tail}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name}: no line matching {pattern!r}")
                self._cond.wait(left)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Signal the whole process group."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL it if it does not exit in time."""
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait(5)
        if self.pumping is not None:
            self.pumping.join(5)  # it closes the pipe at its end


class Procs:
    """Every child of a run; `stop_all` ends them (call it in a `finally`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        """Start `argv` in a new process group; stdout is read line by line on a thread."""
        path = self.workdir / f"{name}.stderr"
        log = path.open("a")
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}", **(env or {})},
            start_new_session=True,
        )
        log.close()
        child = Child(name, proc, path)
        child.pumping = threading.Thread(target=child.pump, daemon=True)
        child.pumping.start()
        self.children.append(child)
        return child

    def server(self, db: Path, port: int = 0, native_port: int = 0, *extra: str) -> Server:
        """A `shoal server` on the SQLite file `db`, ready (its ready line read), serving
        gRPC on `port` and the native framing on `native_port` (0: any free port).
        """
        started = time.perf_counter()
        child = self.spawn(
            "server",
            [
                *(PY, "-m", "shoal.cli", "server", "--store", f"sqlite:///{db}"),
                *("--grpc-listen", f"127.0.0.1:{port}"),
                *("--native-listen", f"127.0.0.1:{native_port}", "--log-level", "warning", *extra),
            ],
        )
        found = child.wait_line(r"shoal ready .*grpc=(\S+) native=(\S+)", timeout=30)
        return Server(child, found.group(1), time.perf_counter() - started, found.group(2))

    def worker(
        self,
        url: str,
        *,
        concurrency: int = 32,
        pool: str = "asyncio",
        log: Path | None = None,
        queues: str = "bench",
        name: str = "worker",
        prefetch: int = 0,
    ) -> Child:
        """A worker process running `bench.workloads._app`'s tasks, ready (connected)."""
        child = self.spawn(
            name,
            [
                *(PY, "-m", "bench.workloads._worker", "--url", url, "--queues", queues),
                *("--concurrency", str(concurrency), "--pool", pool, "--prefetch", str(prefetch)),
            ],
            env={"SHOAL_BENCH_LOG": str(log)} if log else None,
        )
        child.wait_line(r"^worker ready", timeout=30)
        return child

    def workers(self, url: str, count: int, **options: Any) -> list[Child]:
        """`count` worker processes (`worker0`...), `worker`'s `options`, all ready: started
        together, so 16 of them take the time of a few rather than of 16 imports in a row.
        """
        with ThreadPoolExecutor(count) as pool:
            starting = [
                pool.submit(self.worker, url, name=f"worker{i}", **options) for i in range(count)
            ]
            return [future.result() for future in starting]

    def stop_all(self) -> None:
        """Stop every child still running (workers first, then servers)."""
        for child in sorted(self.children, key=lambda c: c.name == "server"):
            child.stop()
        self.children.clear()


@dataclass
class Server:
    """A ready `shoal server` child."""

    child: Child
    #: The gRPC address (the admin stubs of the workloads always use it).
    address: str
    ready_seconds: float
    native_address: str = ""

    @property
    def grpc_url(self) -> str:
        """The `grpc://` URL of the server."""
        return f"grpc://{self.address}"

    @property
    def native_url(self) -> str:
        """The `shoal://` URL of the server (the native framing)."""
        return f"shoal://{self.native_address}"

    @property
    def url(self) -> str:
        """The URL producers and workers use: `TRANSPORT`'s."""
        return self.native_url if TRANSPORT == "native" else self.grpc_url


@contextmanager
def workspace() -> Iterator[tuple[Path, Procs]]:
    """A temporary directory and a `Procs` whose children are stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        procs = Procs(Path(tmp))
        try:
            yield Path(tmp), procs
        finally:
            procs.stop_all()


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of `values` (nearest rank)."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


Emit = Callable[..., None]


def emitter(sink: list[dict[str, Any]], json_file: Any | None) -> Emit:
    """An `emit(workload, name, value, unit, **config)` that prints one JSON line per call."""

    def emit(workload: str, name: str, value: float, unit: str, **config: Any) -> None:
        record = {
            "system": "shoal",
            "workload": workload,
            "name": name,
            "value": round(value, 3),
            "unit": unit,
            "config": config,
            "time": time.time(),
        }
        sink.append(record)
        line = json.dumps(record)
        print(line, flush=True)
        if json_file is not None:
            json_file.write(line + "\n")
            json_file.flush()

    return emit


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


class Admin:
    """Blocking gRPC calls the SDK does not offer (queue stats, pause, resume, job listings)."""

    def __init__(self, address: str) -> None:
        import grpc

        from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2_grpc, queues_pb2_grpc

        self.channel = grpc.insecure_channel(address)
        self.queues = queues_pb2_grpc.QueueServiceStub(self.channel)
        self.jobs = jobs_pb2_grpc.JobServiceStub(self.channel)

    def counts(self, queue: str = "bench") -> dict[str, int]:
        """Job counts of `queue` by state name."""
        from shoal.protocols.grpc.gen.shoal.v1 import queues_pb2

        reply = self.queues.GetQueueStats(queues_pb2.GetQueueStatsRequest(queue=queue), timeout=30)
        return dict(reply.by_state.counts)

    def pause(self, queue: str = "bench") -> None:
        """Pause `queue`: workers claim nothing from it."""
        from shoal.protocols.grpc.gen.shoal.v1 import queues_pb2

        self.queues.PauseQueue(queues_pb2.PauseQueueRequest(queue=queue), timeout=30)

    def resume(self, queue: str = "bench") -> None:
        """Resume `queue`."""
        from shoal.protocols.grpc.gen.shoal.v1 import queues_pb2

        self.queues.ResumeQueue(queues_pb2.ResumeQueueRequest(queue=queue), timeout=30)

    def all_jobs(self, queue: str = "bench") -> list[Any]:
        """Every job of `queue` (paged)."""
        from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2

        jobs: list[Any] = []
        cursor = ""
        while True:
            page = self.jobs.ListJobs(
                jobs_pb2.ListJobsRequest(queue=queue, cursor=cursor, limit=1000), timeout=30
            )
            jobs.extend(page.jobs)
            cursor = page.next_cursor
            if not cursor:
                return jobs

    def unfinished(self, queue: str = "bench") -> bool:
        """Whether a job of `queue` is still queued, running or scheduled: three listings of
        one job each, which the store answers from an index, whatever the number of jobs.
        """
        from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, model_pb2

        for state in (model_pb2.JOB_STATE_QUEUED, model_pb2.JOB_STATE_RUNNING):
            request = jobs_pb2.ListJobsRequest(queue=queue, state=state, limit=1)
            if self.jobs.ListJobs(request, timeout=30).jobs:
                return True
        request = jobs_pb2.ListJobsRequest(
            queue=queue, state=model_pb2.JOB_STATE_SCHEDULED, limit=1
        )
        return bool(self.jobs.ListJobs(request, timeout=30).jobs)

    def wait_done(
        self, total: int, timeout: float, every: float = 0.02, queue: str = "bench"
    ) -> float:
        """Poll every `every` s until no job of `queue` is unfinished, then check that `total`
        jobs finished (succeeded or failed); the `perf_counter()` time the last was seen
        finished. `TimeoutError` past `timeout`.

        The poll is `unfinished`, not the queue's counts: counting reads every job of the
        queue (~20 ms at 100,000 jobs), which took a sixth of the server's CPU during a drain.
        """
        deadline = time.perf_counter() + timeout
        while True:
            if not self.unfinished(queue):
                seen = time.perf_counter()
                counts = self.counts(queue)
                if counts.get("succeeded", 0) + counts.get("failed", 0) >= total:
                    return seen
            if time.perf_counter() > deadline:
                counts = self.counts(queue)
                raise TimeoutError(f"{counts} after {timeout}s, expected {total} finished")
            time.sleep(every)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()
