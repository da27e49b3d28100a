"""The client commands over a local URL (`sqlite:///file`): no server, the same output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Shoal, as_json


def test_enqueue_ls_and_stats_on_a_sqlite_file(shoal: Shoal, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    first = shoal("enqueue", "local.task", "--args", "[1]", url=url)
    assert first.returncode == 0, first.stderr
    job_id = first.stdout.strip()

    listed = as_json(shoal("jobs", "ls", "--json", url=url))
    assert [job["id"] for job in listed["jobs"]] == [job_id]
    stats = as_json(shoal("queues", "stats", "--json", url=url))
    assert stats["by_state"]["queued"] == 1
    assert as_json(shoal("workers", "ls", "--json", url=url)) == {"workers": []}


def test_shoal_url_is_the_default(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    env = {**os.environ, "SHOAL_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "queues", "ls", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env.db").exists()
