"""`[[schedules]]` in shoal.toml: parsed into `ScheduleInput`s, checked before the server starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shoal.config import load_config
from shoal.core.errors import ConfigError
from shoal.core.schedules import ScheduleInput


def _load(tmp_path: Path, text: str) -> tuple[ScheduleInput, ...]:
    path = tmp_path / "shoal.toml"
    path.write_text('[store]\nurl = "memory://"\n' + text)
    return load_config(path, env={}).config.schedules.declared


def test_every_kind_of_trigger_and_option(tmp_path: Path) -> None:
    schedules = _load(
        tmp_path,
        """
[[schedules]]
id = "tick"
task = "app.tick"
every = "250ms"
args = [1, "two"]
kwargs = { three = 3 }
overlap = "skip"
catch_up = "all"
catch_up_limit = 5
jitter = "20ms"

[[schedules]]
id = "report"
namespace = "acme"
queue = "reports"
task = "app.report"
cron = "*/5 * * * * *"
timezone = "Europe/Paris"
payload = '{"raw": true}'
start = 2030-01-01T00:00:00Z
end = "2031-01-01T00:00:00+01:00"
paused = true
priority = 5
max_attempts = 2
timeout = "30s"
tags = ["a", "b"]

[[schedules]]
id = "once"
task = "app.once"
at = 1900000000
""",
    )
    tick, report, once = schedules
    assert tick.every_ms == 250 and tick.cron is None
    assert json.loads(tick.payload) == {"args": [1, "two"], "kwargs": {"three": 3}}
    assert (tick.overlap, tick.catch_up, tick.catch_up_limit, tick.jitter_ms) == (
        "skip",
        "all",
        5,
        20,
    )
    assert (report.namespace, report.queue, report.cron) == ("acme", "reports", "*/5 * * * * *")
    assert (
        report.timezone == "Europe/Paris" and report.paused and report.payload == b'{"raw": true}'
    )
    assert report.start_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert report.end_at == datetime(2030, 12, 31, 23, tzinfo=UTC).timestamp()
    assert (report.priority, report.max_attempts, report.timeout, report.tags) == (
        5,
        2,
        30.0,
        ("a", "b"),
    )
    assert once.at == 1900000000.0 and once.payload == b"null"


def test_no_schedules_by_default(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == ()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('every = "1s"\nevry = "1s"', "schedules[0].evry"),  # unknown key
        ('cron = "61 * * * *"', "schedules[0] (s).cron"),
        ('cron = "* * *"', "schedules[0] (s).cron"),
        ("every = 0", "schedules[0] (s).every"),
        ("every = -1", "schedules[0] (s).every"),
        ('every = "5ms"', "schedules[0] (s).every"),
        ('every = "soon"', "schedules[0].every"),
        ('cron = "* * * * *"\ntimezone = "Mars/Olympus"', "schedules[0] (s).timezone"),
        ('every = "1s"\ncron = "* * * * *"', "schedules[0] (s).every/cron/at"),
        ("", "schedules[0] (s).every/cron/at"),
        ('every = "1s"\noverlap = "sometimes"', "schedules[0] (s).overlap"),
        ('every = "1s"\ncatch_up = "most"', "schedules[0] (s).catch_up"),
        ('every = "1s"\ncatch_up_limit = 0', "schedules[0] (s).catch_up_limit"),
        ('every = "1s"\nqueue = "has space"', "schedules[0] (s).queue"),
        ('every = "1s"\nstart = 2030-01-01T00:00:00', "schedules[0].start"),
        ('every = "1s"\npriority = "high"', "schedules[0].priority"),
        ('every = "1s"\npaused = 1', "schedules[0].paused"),
        ('every = "1s"\nargs = [1]\npayload = "x"', "schedules[0].payload"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_the_key(
    tmp_path: Path, body: str, named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f'[[schedules]]\nid = "s"\ntask = "t"\n{body}\n')
    assert named in caught.value.message


def test_the_unknown_key_error_suggests_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'schedules\[0\]\.timezone'"):
        _load(
            tmp_path, '[[schedules]]\nid = "s"\ntask = "t"\ncron = "* * * * *"\ntimezon = "UTC"\n'
        )


def test_id_and_task_are_required_and_ids_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"schedules\[0\]: id and task are required"):
        _load(tmp_path, '[[schedules]]\ntask = "t"\nevery = "1s"\n')
    twice = '[[schedules]]\nid = "s"\ntask = "t"\nevery = "1s"\n' * 2
    with pytest.raises(ConfigError, match="declared twice"):
        _load(tmp_path, twice)


def test_schedules_must_be_an_array_of_tables(tmp_path: Path) -> None:
    path = tmp_path / "shoal.toml"
    path.write_text('schedules = "nope"\n')
    with pytest.raises(ConfigError, match="array of tables"):
        load_config(path, env={})
