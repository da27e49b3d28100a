"""`shoal worker`, `enqueue --wait`, `shoal queues ...` and `shoal workers ...` with a real
worker process connected to a real server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from tests.cli.conftest import ROOT, Shoal, as_json


def test_enqueue_wait_prints_the_result(shoal: Shoal, worker: subprocess.Popen[str]) -> None:
    done = shoal("enqueue", "cli.add", "--queue", "cli", "--args", "[2, 3]", "--wait")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5"

    job = as_json(shoal("enqueue", "cli.add", "-q", "cli", "--args", "[4, 5]", "--wait", "--json"))
    assert (job["state"], job["result"], job["attempt"]) == ("succeeded", 9, 1)


def test_enqueue_wait_reports_the_remote_error(shoal: Shoal, worker: subprocess.Popen[str]) -> None:
    done = shoal("enqueue", "cli.boom", "-q", "cli", "--args", '["no stock"]', "--wait")
    assert done.returncode == 1
    assert "shoal: error: job " in done.stderr
    assert "failed: NonRetryable: no stock" in done.stderr


def test_enqueue_wait_times_out(shoal: Shoal) -> None:
    # no worker: the job stays queued
    done = shoal(
        "enqueue", "cli.add", "-q", "cli", "--args", "[1, 1]", "--wait", "--timeout", "300ms"
    )
    assert done.returncode == 1
    assert "timeout: job" in done.stderr and "still queued" in done.stderr


def connected_worker(shoal: Shoal) -> dict[str, Any]:
    """The test's worker as `workers ls --json` lists it, once it has run a job."""
    assert shoal("enqueue", "cli.add", "-q", "cli", "--args", "[1, 2]", "--wait").returncode == 0
    listed = as_json(shoal("workers", "ls", "--json"))["workers"]
    assert len(listed) == 1
    member: dict[str, Any] = listed[0]
    assert member["queues"] == ["cli"] and member["language"] == "python"
    assert member["state"] in ("idle", "busy")
    return member


def test_workers_ls_and_drain(shoal: Shoal, worker: subprocess.Popen[str]) -> None:
    member = connected_worker(shoal)
    table = shoal("workers", "ls")
    assert member["id"] in table.stdout
    # the response is the membership record as drained (the worker then opens a new session)
    drained = as_json(shoal("workers", "drain", member["id"], "--json"))
    assert (drained["id"], drained["state"]) == (member["id"], "draining")


def test_workers_kick(shoal: Shoal, worker: subprocess.Popen[str]) -> None:
    member = connected_worker(shoal)
    kicked = as_json(shoal("workers", "kick", member["id"], "--json"))
    assert kicked == {"worker_id": member["id"], "released": []}
    missing = shoal("workers", "kick", "nobody")
    assert missing.returncode == 1 and missing.stderr.startswith("shoal: error: not_found: ")


def test_queues_ls_stats_pause_resume_purge_rm(shoal: Shoal) -> None:
    for task in ("q.one", "q.one", "q.two"):
        assert shoal("enqueue", task, "--queue", "work").returncode == 0
    assert shoal("enqueue", "q.one", "--queue", "spare").returncode == 0

    queues = as_json(shoal("queues", "ls", "--json"))["queues"]
    counts = {queue["name"]: queue["counts"]["queued"] for queue in queues}
    assert counts == {"spare": 1, "work": 3}
    stats = as_json(shoal("queues", "stats", "work", "--json"))
    assert stats["total"] == 3
    assert stats["by_task"]["q.one"]["queued"] == 2
    assert "q.two" in shoal("queues", "stats").stdout

    assert as_json(shoal("queues", "pause", "work", "--json"))["action"] == "pause"
    assert as_json(shoal("queues", "ls", "--json"))["queues"][1]["paused"] is True
    assert shoal("queues", "resume", "work").stdout.strip() == "queue work: resumed"
    assert as_json(shoal("queues", "purge", "work", "--json"))["deleted"] == 3
    assert as_json(shoal("queues", "rm", "spare", "--json"))["deleted"] == 1


def test_worker_stops_on_sigterm(shoal: Shoal, server_url: str, namespace: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "shoal.cli", "worker", "tests.cli.tasks:app", "--url", server_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CLI_TEST_NAMESPACE": namespace},
    )
    try:
        assert process.stdout is not None
        started = next((line for line in process.stdout if "started on queues" in line), "")
        assert "INFO" in started  # text logs on the console, as configured by the command
        done = shoal("enqueue", "cli.slow", "-q", "cli", "--args", "[0.01]", "--wait")
        assert done.returncode == 0, done.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_worker_usage_errors(shoal: Shoal) -> None:
    assert shoal("worker", "tests.cli.tasks:app", "--pool", "fibers", ns=False).returncode == 2
    missing = shoal("worker", "no_such_module:app", ns=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("shoal: error: config_error: cannot import")


def test_show_gives_the_error_and_traceback(shoal: Shoal, worker: subprocess.Popen[str]) -> None:
    done = shoal(
        "enqueue", "cli.boom", "-q", "cli", "--args", '["out of paper"]', "--wait", "--json"
    )
    assert done.returncode == 1  # the job failed: still one JSON document, and the exit says so
    failed = json.loads(done.stdout)
    assert failed["state"] == "failed"
    assert failed["error"]["type"] == "NonRetryable"
    assert failed["error"]["retryable"] is False
    shown = shoal("jobs", "show", failed["id"])
    assert shown.returncode == 0
    assert "NonRetryable: out of paper" in shown.stdout
    assert "traceback" in shown.stdout and "cli/tasks.py" in shown.stdout
