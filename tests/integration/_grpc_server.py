"""Helpers for tests against a real `shoal server` subprocess and worker subprocesses."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import (
    jobs_pb2,
    jobs_pb2_grpc,
    queues_pb2_grpc,
    workers_pb2_grpc,
)

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "_grpc_worker.py"


class Lines:
    """The standard output of a child process, line by line, read on a thread."""

    def __init__(self, stream: Any) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, timeout: float) -> str | None:
        """The next line, or None at the end of the stream; `TimeoutError` if none comes."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no line within {timeout}s; seen: {self.seen[-10:]}") from None
        if line is not None:
            self.seen.append(line)
        return line


@dataclass
class ServerProcess:
    """A running `shoal server`."""

    proc: subprocess.Popen[str]
    address: str
    store: str
    stderr_path: Path
    #: Every `name=value` of the ready line.
    ready: dict[str, str] = field(default_factory=dict)

    def channel(self) -> grpc.Channel:
        """A new channel to the server."""
        return grpc.insecure_channel(self.address)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server and wait for it to exit; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for a server that was already told to stop (a second signal would mean "now")."""
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def stderr(self) -> str:
        """What the server logged."""
        return self.stderr_path.read_text()


def server_command(*args: str) -> list[str]:
    """The command line of `shoal server` with `args`."""
    return [sys.executable, "-m", "shoal.cli", "server", *args]


def start_server(tmp_path: Path, *args: str, store: str | None = None) -> ServerProcess:
    """Start `shoal server` on a random loopback port and wait for its ready line."""
    store = store or f"sqlite:///{tmp_path / 'shoal.db'}"
    stderr_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    command = server_command("--grpc-listen", "127.0.0.1:0", "--store", store, *args)
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines = Lines(proc.stdout)
    try:
        ready = lines.next(timeout=30)
        if ready is None or not ready.startswith("shoal ready "):
            raise AssertionError(f"server did not start: {ready!r}\n{stderr_path.read_text()}")
    except BaseException:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        raise
    fields = dict(item.split("=", 1) for item in ready.split()[2:])
    return ServerProcess(proc, fields.get("grpc", ""), fields["store"], stderr_path, fields)


@dataclass
class WorkerProcess:
    """A worker subprocess that prints one JSON object per event on standard output."""

    proc: subprocess.Popen[str]
    lines: Lines
    events: list[dict[str, Any]] = field(default_factory=list)

    def expect(
        self, kind: str, timeout: float = 15.0, where: Callable[[dict[str, Any]], bool] = bool
    ) -> dict[str, Any]:
        """The next event of `kind` (for which `where` holds), skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.next(max(deadline - time.monotonic(), 0.01))
            if line is None:
                raise AssertionError(f"worker exited while waiting for {kind}: {self.events}")
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == kind and where(event):
                return event

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_worker(address: str, *args: str) -> WorkerProcess:
    """Start the Python test worker against `address` and wait until it is welcomed."""
    command = [sys.executable, str(WORKER_SCRIPT), "--target", address, *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    worker = WorkerProcess(proc, Lines(proc.stdout))
    worker.expect("welcome")
    return worker


class Client:
    """Generated stubs over one channel, as a producer or an admin uses them."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.jobs = jobs_pb2_grpc.JobServiceStub(channel)
        self.queues = queues_pb2_grpc.QueueServiceStub(channel)
        self.workers = workers_pb2_grpc.WorkerServiceStub(channel)

    def enqueue(self, task: str, payload: object = None, **options: Any) -> str:
        """Enqueue one job; its id."""
        request = jobs_pb2.EnqueueRequest(
            task=task, payload=json.dumps(payload).encode(), **options
        )
        response = self.jobs.Enqueue(request, timeout=10)
        return str(response.job.id)

    def wait(self, job_id: str, timeout: float = 30.0) -> Any:
        """The job once finished (or as it is after `timeout`)."""
        request = jobs_pb2.WaitForJobRequest(id=job_id, timeout=timeout)
        return self.jobs.WaitForJob(request, timeout=timeout + 5).job


def error_code(error: grpc.RpcError) -> str | None:
    """The `shoal-error-code` trailing metadata of a failed call."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "shoal-error-code":
            return str(value)
    return None


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Worker processes started by a test; every one is killed at the end."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `shoal server` on SQLite with default settings."""
    process = start_server(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    """Stubs connected to the `server` fixture."""
    with server.channel() as channel:
        yield Client(channel)
