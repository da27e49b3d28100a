"""The scheduler in a real `shoal server` subprocess (SQLite file, random loopback port), with
schedules declared in shoal.toml and an SDK worker over gRPC.

Precision: every slot of a 100 ms (and a 1 s) schedule makes exactly one job, counted by the
slot in its idempotency key `schedule:<id>:<slot>`; the start of each job (the server's
`started_at`, when the worker's stream leased it, up to the lookahead ahead of the slot, and
the moment the task body ran) is compared with its ideal slot. Run with `-s` to see the numbers:

    .venv/bin/pytest tests/integration/test_scheduler_server.py -s -m "slow or not slow"

Restart: the server is killed with SIGKILL for 5 s during a 1 s schedule; after the restart the
catch-up policy is obeyed exactly.
"""

from __future__ import annotations

import asyncio
import math
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.core.model import Job, JobQuery
from shoal.sdk import Admin, App, Worker, WorkerConfig, current_job
from tests.integration._grpc_server import ServerProcess, server_command, start_server

SCHEDULE = "tick"


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "shoal.toml"
    path.write_text(body)
    return path


def _schedule(every: str, start: float, end: float | None = None, **extra: str) -> str:
    lines = [
        "[[schedules]]",
        f'id = "{SCHEDULE}"',
        'task = "tick"',
        f'every = "{every}"',
        "args = []",
        f"start = {start}",
        *([f"end = {end}"] if end is not None else []),
        *(f'{key} = "{value}"' for key, value in extra.items()),
    ]
    return "\n".join(lines) + "\n"


async def _jobs(address: str) -> list[Job]:
    """Every job of the default namespace."""
    found: list[Job] = []
    async with Admin(f"grpc://{address}") as admin:
        cursor: str | None = None
        while True:
            page = await admin.list_jobs(JobQuery(cursor=cursor, limit=1000))
            found += page.jobs
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor


def _slot(job: Job) -> int:
    key = job.idempotency_key or ""
    assert key.startswith(f"schedule:{SCHEDULE}:"), key
    return int(key.rsplit(":", 1)[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(math.ceil(q * len(ordered)) - 1, 0))]


@dataclass
class Measured:
    every_ms: int
    slots: int
    claim_ms: list[float]
    run_ms: list[float]

    def line(self) -> str:
        def stats(values: list[float]) -> str:
            return (
                f"p50={statistics.median(values):.2f} p99={percentile(values, 0.99):.2f} "
                f"max={max(values):.2f} ms"
            )

        return (
            f"every {self.every_ms} ms, {self.slots} slots: claim lateness {stats(self.claim_ms)}; "
            f"task start lateness {stats(self.run_ms)}"
        )


async def _precision(tmp_path: Path, every_ms: int, duration: float) -> Measured:
    start = math.ceil(time.time()) + 5.0  # after the server and the worker are up
    end = start + duration
    config = _toml(tmp_path, _schedule(f"{every_ms}ms", start, end))
    server = start_server(tmp_path, "--config", str(config))
    ran: dict[str, float] = {}
    try:
        app = App(f"grpc://{server.address}", worker=None)

        @app.task(name="tick")
        async def tick() -> None:
            ran[current_job().id] = time.time()

        async with app:
            worker = Worker.from_config(app, WorkerConfig(concurrency=16, pool="asyncio"))
            await worker.start()
            assert time.time() < start, "the server and worker took over 5 s to start"
            try:
                await asyncio.sleep(max(end - time.time(), 0) + 1.0)
                jobs = await _jobs(server.address)
            finally:
                await worker.stop()
    finally:
        server.stop()
    slots = Counter(_slot(job) for job in jobs)
    expected = set(range(int(start * 1000), int(end * 1000) + 1, every_ms))
    assert not [slot for slot, count in slots.items() if count > 1], "a slot fired twice"
    assert sorted(expected - set(slots)) == [], "missed slots"
    assert set(slots) == expected
    assert all(job.started_at is not None for job in jobs)
    claim = [(job.started_at or 0) * 1000 - _slot(job) for job in jobs]
    run = [ran[job.id] * 1000 - _slot(job) for job in jobs if job.id in ran]
    assert len(run) == len(jobs)
    measured = Measured(every_ms, len(jobs), claim, run)
    print(f"\n{measured.line()}", file=sys.stderr)
    # Fired ahead (`allow`), a job is leased up to the lookahead (100 ms) before its slot, and
    # the worker holds it until the slot. The goal is p99 < 1 ms late on an idle machine; a
    # loaded 2-core CI box gets some slack.
    assert percentile(claim, 0.99) < 50, measured.line()
    assert min(claim) >= -101, "a job was leased before its slot's lookahead"
    assert percentile(run, 0.99) < 50, measured.line()
    assert min(run) >= 0, "a task started before its slot"
    return measured


async def test_a_100ms_schedule_for_5s_fires_every_slot_once_on_time(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    measured = await _precision(tmp_path, 100, 5.0)
    record_property("precision_100ms_5s", measured.line())


@pytest.mark.slow
async def test_a_100ms_schedule_for_30s_fires_every_slot_once_on_time(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    measured = await _precision(tmp_path, 100, 30.0)
    record_property("precision_100ms_30s", measured.line())


@pytest.mark.slow
async def test_a_1s_schedule_for_30s_fires_every_slot_once_on_time(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    measured = await _precision(tmp_path, 1000, 30.0)
    record_property("precision_1s_30s", measured.line())


# --- restart ----------------------------------------------------------------------------------


async def _wait_for_slots(server: ServerProcess, count: int, timeout: float = 20.0) -> list[Job]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = await _jobs(server.address)
        if len(jobs) >= count:
            return jobs
        assert time.monotonic() < deadline, f"only {len(jobs)} jobs"
        await asyncio.sleep(0.2)


@pytest.mark.crash
@pytest.mark.parametrize("policy", ["skip", "one", "all"])
async def test_catch_up_after_a_kill_9_is_obeyed_exactly(tmp_path: Path, policy: str) -> None:
    start = math.ceil(time.time()) + 2.0
    config = _toml(tmp_path, _schedule("1s", start, catch_up=policy))
    server = start_server(tmp_path, "--config", str(config))
    try:
        before = await _wait_for_slots(server, 3)
        # Kill half-way between two slots, so no fire is in flight.
        last = max(_slot(job) for job in before)
        await asyncio.sleep(max(last / 1000 + 0.5 - time.time(), 0))
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        killed_at = time.time()
        await asyncio.sleep(5.0)
    finally:
        server.stop()
    server = start_server(tmp_path, "--config", str(config))
    restarted_at = time.time()
    try:
        await asyncio.sleep(3.2)  # the catch-up, then three regular slots
        jobs = await _jobs(server.address)
    finally:
        server.stop()
    slots = Counter(_slot(job) for job in jobs)
    assert max(slots.values()) == 1, "a slot fired twice"
    before = sorted(slot for slot in slots if slot < killed_at * 1000)
    after = sorted(slot for slot in slots if slot > killed_at * 1000)
    assert len(before) >= 3 and before == list(range(before[0], before[-1] + 1, 1000))
    # The new leader logs how many slots its catch-up fired; they come first, then the
    # regular slots, each on time. (A catch-up fire can be made within ms of its slot, so
    # lateness alone cannot tell the two apart.)
    caught = re.findall(r"schedule tick caught up: (\d+) fires \((\w+)\)", server.stderr())
    assert len(caught) == 1 and caught[0][1] == policy, caught
    count = int(caught[0][0])
    catch_up, regular = after[:count], after[count:]
    assert len(regular) >= 2 and regular == list(range(regular[0], regular[-1] + 1, 1000))
    missed = list(range(max(before) + 1000, regular[0], 1000))
    assert len(missed) >= 5, (missed, restarted_at - killed_at)  # 5 s down, plus the restart
    expected = {"skip": [], "one": missed[-1:], "all": missed}[policy]
    assert catch_up == expected, (policy, catch_up, missed)
    made = {_slot(job): job.created_at * 1000 for job in jobs}
    assert all(made[slot] >= restarted_at * 1000 - 2000 for slot in catch_up)  # by the new server
    assert all(made[slot] < regular[0] for slot in catch_up)  # before the first regular slot


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('cron = "*/5 * * * * * * *"', "schedules[0] (bad).cron"),
        ('every = "0s"', "schedules[0] (bad).every"),
        ('every = "-1s"', "schedules[0].every"),
        ('cron = "0 9 * * *"\ntimezone = "Europe/Atlantis"', "schedules[0] (bad).timezone"),
        ('every = "1s"\nevery_ms = 5', "schedules[0].every_ms"),
    ],
)
def test_the_server_refuses_a_bad_declared_schedule(tmp_path: Path, line: str, named: str) -> None:
    config = _toml(tmp_path, f'[[schedules]]\nid = "bad"\ntask = "t"\n{line}\n')
    database = tmp_path / "shoal.db"
    command = server_command(
        *("--config", str(config), "--grpc-listen", "127.0.0.1:0"),
        *("--store", f"sqlite:///{database}"),
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert not database.exists()  # refused before the store was opened: nothing stored


async def test_a_changed_declaration_is_applied_at_the_next_start(tmp_path: Path) -> None:
    seen = []
    for trigger in ('every = "1h"', 'cron = "*/30 * * * * *"\ntimezone = "Europe/Paris"'):
        config = _toml(tmp_path, f'[[schedules]]\nid = "decl"\ntask = "t"\n{trigger}\n')
        server = start_server(tmp_path, "--config", str(config))
        try:
            async with Admin(f"grpc://{server.address}") as admin:
                seen.append(await admin.get_schedule("decl"))
                assert len(await admin.list_schedules()) == 1
        finally:
            server.stop()
    first, second = seen
    assert (first.kind, first.every_ms) == ("interval", 3_600_000)
    assert (second.kind, second.cron, second.timezone) == (
        "cron",
        "*/30 * * * * *",
        "Europe/Paris",
    )
    assert second.created_at == first.created_at  # updated in place, not made anew
