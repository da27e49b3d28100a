"""`shoal demo --once`: the README's first command runs to completion and shows jobs finish."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from tests.cli.conftest import ROOT


@pytest.mark.slow
def test_demo_once_runs_to_completion() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "demo", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "dashboard  http://127.0.0.1:" in out
    assert out.count("succeeded after") >= 13
    assert "retrying" in out  # a flaky task failed, then succeeded
    assert "failed after 2 attempt(s)" in out  # retries ran out
    assert "cancelled after" in out  # the long job, while it ran
    assert "all 16 demo jobs ended as planned" in out
    assert "demo jobs finished" in out and "16/16" in out


@pytest.mark.slow
def test_demo_once_fails_when_its_jobs_do_not_finish_in_time() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "demo", "--once", "--timeout", "0.1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "the demo did not finish in 0.1s" in done.stdout
    assert "expected succeeded" in done.stdout


def test_demo_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert done.returncode == 0
    assert "--once" in done.stdout


@pytest.mark.slow
def test_demo_serves_the_dashboard_until_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "shoal.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = next((line for line in process.stdout if "dashboard" in line), "")
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, line
        page = httpx.get(found.group(1), follow_redirects=True, timeout=30)
        assert page.status_code == 200
        assert "shoal" in page.text.lower()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
