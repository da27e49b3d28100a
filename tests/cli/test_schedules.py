"""`shoal schedules ...` against a real server, and over a local SQLite URL (backfill)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.cli.conftest import Shoal, as_json


def test_add_ls_show_pause_resume_trigger_rm(shoal: Shoal) -> None:
    added = as_json(
        shoal(
            "schedules", "add", "--task", "report.daily", "--cron", "0 9 * * *",
            "--id", "daily", "--queue", "reports", "--args", '["eu"]', "--json",
        )
    )  # fmt: skip
    assert (added["id"], added["kind"], added["queue"]) == ("daily", "cron", "reports")
    assert added["payload"] == {"args": ["eu"], "kwargs": {}}
    assert added["next_fire_at"] > time.time()
    fast = as_json(shoal("schedules", "add", "--task", "tick", "--every", "250ms", "--json"))
    assert fast["every_ms"] == 250

    listed = as_json(shoal("schedules", "ls", "--json"))["schedules"]
    assert {view["id"] for view in listed} == {"daily", fast["id"]}
    table = shoal("schedules", "ls")
    assert "cron 0 9 * * * (UTC)" in table.stdout and "every 250ms" in table.stdout

    shown = as_json(shoal("schedules", "show", "daily", "--upcoming", "3", "--json"))
    assert len(shown["upcoming"]) == 1  # gRPC knows the next fire of a cron
    every = as_json(shoal("schedules", "show", fast["id"], "--upcoming", "3", "--json"))
    gaps = [b - a for a, b in zip(every["upcoming"], every["upcoming"][1:], strict=False)]
    assert [round(gap, 3) for gap in gaps] == [0.25, 0.25]

    paused = as_json(shoal("schedules", "pause", "daily", "--json"))["schedule"]
    assert paused["paused"] is True and paused["next_fire_at"] is None
    assert "resumed" in shoal("schedules", "resume", "daily").stdout

    job = as_json(shoal("schedules", "trigger", "daily", "--json"))
    assert (job["task"], job["schedule_id"], job["queue"]) == ("report.daily", "daily", "reports")

    assert shoal("schedules", "rm", fast["id"]).returncode == 0
    assert shoal("schedules", "rm", "daily", "--json").returncode == 0
    assert as_json(shoal("schedules", "ls", "--json")) == {"schedules": []}


def test_add_needs_exactly_one_trigger(shoal: Shoal) -> None:
    assert shoal("schedules", "add", "--task", "t").returncode == 2
    both = shoal("schedules", "add", "--task", "t", "--every", "1s", "--cron", "* * * * *")
    assert both.returncode == 2 and "exactly one of" in both.stderr
    bad_cron = shoal("schedules", "add", "--task", "t", "--cron", "every day")
    assert bad_cron.returncode == 1
    assert bad_cron.stderr.startswith("shoal: error: invalid_argument: ")


def test_once_at_an_iso_time(shoal: Shoal) -> None:
    view = as_json(
        shoal("schedules", "add", "--task", "t", "--at", "2099-01-01T00:00:00", "--json")
    )
    assert view["kind"] == "once"
    assert view["next_fire_at"] == 4070908800.0


def test_backfill_is_refused_over_grpc(shoal: Shoal) -> None:
    as_json(shoal("schedules", "add", "--task", "t", "--every", "1h", "--id", "h", "--json"))
    refused = shoal("schedules", "backfill", "h", "--from", "-3h", "--to", "+0s")
    assert refused.returncode == 1
    assert "backfill is not offered over gRPC" in refused.stderr


def test_backfill_over_a_local_sqlite_url(shoal: Shoal, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    start = int(time.time()) - 3 * 3600
    as_json(
        shoal(
            "schedules", "add", "--task", "t", "--every", "1h", "--id", "h",
            "--start", str(start), "--json", url=url,
        )
    )  # fmt: skip
    made = as_json(
        shoal(
            "schedules", "backfill", "h", "--from", str(start), "--to", str(start + 7200),
            "--json", url=url,
        )
    )  # fmt: skip
    assert made["id"] == "h"
    slots = [start + hours * 3600 for hours in range(3)]  # [start, start + 2h], both included
    keys = [f"schedule:h:{slot * 1000}" for slot in slots]
    assert sorted(job["idempotency_key"] for job in made["jobs"]) == keys
    assert all(job["schedule_id"] == "h" for job in made["jobs"])
