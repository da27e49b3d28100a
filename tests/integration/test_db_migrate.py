"""`shoal db migrate` on SQLite and PostgreSQL: applies what is missing, then nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shoal.stores.sqlite import SqliteStore

from ._postgres import postgres_url


def shoal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_sqlite_file_is_migrated_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shoal.db'}"
    first = shoal("db", "migrate", "--store", url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "applied 0001_initial",
        "applied 0002_identity",
        "applied 0003_ready_holds_due_jobs",
        "applied 0004_audit_retention",
    ]
    again = shoal("db", "migrate", "--store", url)
    assert (again.returncode, again.stdout.strip()) == (0, "the schema is up to date")


async def test_sqlite_migrate_refuses_beside_an_open_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "busy.db")
    await store.open()
    try:
        result = shoal("db", "migrate", "--store", f"sqlite:///{tmp_path / 'busy.db'}")
    finally:
        await store.close()
    assert result.returncode == 4 and "in use by another shoal store" in result.stderr


def test_unknown_schemes_and_memory_are_config_errors() -> None:
    assert shoal("db", "migrate", "--store", "memory://").returncode == 2
    bad = shoal("db", "migrate", "--store", "mysql://x")
    assert bad.returncode == 2 and "mysql" in bad.stderr


@pytest.mark.postgres
async def test_postgres_database_is_migrated_once() -> None:
    import asyncpg

    server = postgres_url()
    name = f"shoal_migrate_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = server.rsplit("/", 1)[0] + f"/{name}"
        first = shoal("db", "migrate", "--store", url)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [
            "applied 0001_initial",
            "applied 0002_identity",
            "applied 0003_ready_holds_due_jobs",
            "applied 0004_audit_retention",
        ]
        again = shoal("db", "migrate", "--store", url)
        assert again.stdout.strip() == "the schema is up to date"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.postgres
async def test_a_server_told_not_to_migrate_waits_for_shoal_db_migrate() -> None:
    import asyncpg

    server = postgres_url()
    name = f"shoal_migrate_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + f"/{name}"
    args = ("--store", url, "--grpc-listen", "127.0.0.1:0", "--set", "store.migrate=false")
    try:
        refused = shoal("server", *args)
        assert refused.returncode == 4 and "shoal db migrate" in refused.stderr
        assert shoal("db", "migrate", "--store", url).returncode == 0
        started = subprocess.Popen(
            [sys.executable, "-m", "shoal.cli", "server", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert started.stdout is not None
            assert started.stdout.readline().startswith("shoal ready")
        finally:
            started.terminate()
            assert started.wait(20) == 0
            for stream in (started.stdout, started.stderr):
                if stream is not None:
                    stream.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
