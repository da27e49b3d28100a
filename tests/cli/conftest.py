"""Fixtures of the CLI tests: a real `shoal server` subprocess, the `shoal` command run as a
subprocess (what users run), and a `shoal worker` subprocess for the tests' tasks.

Each test works in a namespace of its own, so tests sharing the server never see each
other's jobs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOAL_")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `shoal server` on a SQLite file and a free loopback port; its `grpc://` URL."""
    folder = tmp_path_factory.mktemp("cli-server")
    with (folder / "server.log").open("w") as errors:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "shoal.cli", "server"),
                *("--store", f"sqlite:///{folder / 'shoal.db'}", "--grpc-listen", "127.0.0.1:0"),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=_env(),
        )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # "" if the server exits instead
        found = re.search(r"grpc=(\S+)", ready)
        assert found, f"the server did not start: {ready!r}; see {folder / 'server.log'}"
        yield f"grpc://{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def namespace() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


Shoal = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def shoal(server_url: str, namespace: str) -> Shoal:
    """Run `shoal ARGS... --url SERVER --namespace NS`; the finished process."""

    def run(*args: str, url: str | None = server_url, ns: bool = True) -> Any:
        extra = [*(("--url", url) if url else ()), *(("--namespace", namespace) if ns else ())]
        return subprocess.run(
            [sys.executable, "-m", "shoal.cli", *args, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(COLUMNS="200"),
            cwd=ROOT,
        )

    return run


def as_json(process: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document a `--json` command printed (after checking it succeeded)."""
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


@pytest.fixture
def worker(server_url: str, namespace: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`shoal worker tests.cli.tasks:app` in the test's namespace, stopped with SIGTERM."""
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "shoal.cli", "worker", "tests.cli.tasks:app"),
                *("--url", server_url, "--queues", "cli", "--pool", "asyncio"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(CLI_TEST_NAMESPACE=namespace),
            cwd=ROOT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
