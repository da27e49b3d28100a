"""What only a shared database shows: NOTIFY between processes' stores, idempotent enqueue raced
from several connections, migrations, retention in batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shoal.core.errors import ConfigError, LeaseLost, StorageError, Unavailable
from shoal.core.model import JobState, LeaseRef
from shoal.core.ports import ClaimRequest
from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.stores.postgres import PostgresOptions, PostgresStore, migrate
from shoal.stores.postgres import _listen as listen_module
from shoal.stores.postgres._base import READY_CHANNEL
from shoal.stores.postgres._jobs import _CLAIM, SCHEDULED_SCAN
from shoal.stores.postgres._migrate import available
from shoal.stores.postgres.testing import database_url, temporary_database
from shoal.testing import T0, make_job
from tests.integration._postgres import postgres_url

pytestmark = pytest.mark.postgres


class Heard:
    """A ready listener that keeps the queues it is told of."""

    def __init__(self) -> None:
        self.queues: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def notify(self, namespace: str, queue: str) -> None:
        self.queues.put_nowait((namespace, queue))

    def notify_all(self) -> None:
        """Not a queue: the tests here look for the notices."""


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with temporary_database(postgres_url()) as url:
        yield url


@pytest.fixture
async def two_stores(database: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(database), PostgresStore(database)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_notify_wakes_the_listener_of_another_store_only(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    producer, consumer = two_stores
    heard, own = Heard(), Heard()
    consumer.set_ready_listener(heard)
    producer.set_ready_listener(own)

    await producer.enqueue([make_job(queue="mail"), make_job(queue="mail")], T0)
    assert await asyncio.wait_for(heard.queues.get(), 5) == ("default", "mail")
    # A delayed job is not ready: no notice until it is promoted.
    await producer.enqueue([make_job(queue="later", run_at=T0 + 60)], T0)
    await producer.promote_due(T0 + 60)
    assert await asyncio.wait_for(heard.queues.get(), 5) == ("default", "later")
    assert heard.queues.empty() and own.queues.empty()


async def test_listening_resumes_after_the_connection_is_killed(
    database: str, two_stores: tuple[PostgresStore, PostgresStore]
) -> None:
    producer, consumer = two_stores
    heard = Heard()
    consumer.set_ready_listener(heard)
    listening = (
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )
    admin = await asyncpg.connect(database)
    try:
        killed = [row["pid"] for row in await admin.fetch(listening)]
        assert len(killed) == 2  # one per store
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", killed)
        # Polling the server is the only way to see the stores reconnect.
        deadline = asyncio.get_running_loop().time() + 10
        while {row["pid"] for row in await admin.fetch(listening)} & set(killed) or len(
            await admin.fetch(listening)
        ) < 2:
            assert asyncio.get_running_loop().time() < deadline, "LISTEN did not come back"
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    await producer.enqueue([make_job(queue="after")], T0)
    assert await asyncio.wait_for(heard.queues.get(), 5) == ("default", "after")


async def test_a_listen_connection_that_went_silent_is_replaced(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listen_module, "_PING_EVERY", 0.2)
    monkeypatch.setattr(listen_module, "_PING_TIMEOUT", 0.2)
    producer, consumer = PostgresStore(database), PostgresStore(database)
    await producer.open()
    await consumer.open()
    try:
        heard = Heard()
        consumer.set_ready_listener(heard)
        silent = consumer._channel._conn
        assert silent is not None

        answer = asyncpg.Connection.fetchval

        async def fetchval(conn: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
            if conn is silent:
                await asyncio.sleep(3600)
            return await answer(conn, *args, **kwargs)

        # a connection a NAT forgot: no error, no end, no notices; nothing noticed it
        monkeypatch.setattr(asyncpg.Connection, "fetchval", fetchval)
        await silent.remove_listener(READY_CHANNEL, consumer._channel._on_notify)
        async with asyncio.timeout(10):
            while consumer._channel._conn is silent:
                await asyncio.sleep(0.05)
        await producer.enqueue([make_job(queue="after")], T0)
        assert await asyncio.wait_for(heard.queues.get(), 5) == ("default", "after")
    finally:
        await producer.close()
        await consumer.close()


async def test_a_waiting_claimer_wakes_on_an_enqueue_from_another_process(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    producer_store, worker_store = two_stores
    producer, worker = QueueService(producer_store), QueueService(worker_store)
    claim = asyncio.create_task(worker.claim(ClaimInput("w", ("q",), wait=30.0)))
    await asyncio.sleep(0)  # let the claimer find the queue empty and wait
    await producer.enqueue(EnqueueRequest(task="t", queue="q"))
    # Without the NOTIFY the claimer would sleep its whole 30 s wait.
    [job] = await asyncio.wait_for(claim, 5)
    assert job.queue == "q" and job.state is JobState.RUNNING


async def test_idempotent_enqueue_races_give_one_job(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    stores = two_stores * 5
    results = await asyncio.gather(
        *(store.enqueue([make_job(idempotency_key="once")], T0) for store in stores)
    )
    created = [r for [r] in results if r.created]
    assert len(created) == 1
    assert {r.job.id for [r] in results} == {created[0].job.id}


async def test_claims_from_two_stores_never_share_a_job(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, _ = two_stores
    await first.enqueue([make_job(priority=i % 3) for i in range(300)], T0)

    async def drain(store: PostgresStore, worker: str) -> list[str]:
        got: list[str] = []
        while jobs := await store.claim(ClaimRequest("default", ("default",), worker, 9, 30, T0)):
            got += [job.id for job in jobs]
        return got

    batches = await asyncio.gather(*(drain(s, f"w{i}") for i, s in enumerate(two_stores * 3)))
    claimed = [job_id for batch in batches for job_id in batch]
    assert len(claimed) == len(set(claimed)) == 300


async def test_retention_deletes_in_batches_up_to_the_limit(database: str) -> None:
    store = PostgresStore(database)
    await store.open()
    try:
        for _ in range(5):
            await store.enqueue([make_job() for _ in range(500)], T0)
        while jobs := await store.claim(ClaimRequest("default", ("default",), "w", 500, 30, T0)):
            for job in jobs:
                await store.complete(LeaseRef(job.id, job.lease_token or ""), None, T0 + 1)
        assert await store.purge_finished(T0 + 2, limit=2200) == 2200
        assert await store.purge_finished(T0 + 2) == 300
        assert (await store.stats("default")).total == 0
    finally:
        await store.close()


async def test_migrate_applies_each_migration_once() -> None:
    server = postgres_url()
    admin = await asyncpg.connect(server)
    name = "shoal_test_migrate_empty"
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = database_url(server, name)
        unmigrated = PostgresStore(url, PostgresOptions(migrate=False))
        with pytest.raises(StorageError, match="shoal db migrate"):
            await unmigrated.open()
        assert await migrate(url) == [m.name for m in available()]
        assert await migrate(url) == []
        await unmigrated.open()
        await unmigrated.close()
        with pytest.raises(Unavailable):
            await unmigrated.get_job("default", "x")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_completions_sharing_a_statement_each_get_their_own_outcome(database: str) -> None:
    store = PostgresStore(database)
    await store.open()
    try:
        await store.enqueue([make_job() for _ in range(30)], T0)
        jobs = await store.claim(ClaimRequest("default", ("default",), "w", 30, 30, T0))
        live = [LeaseRef(job.id, job.lease_token or "") for job in jobs]
        # Every job once with its live token, the first ten twice, and forged tokens: one
        # statement may carry several of them, but each must come out as if alone.
        calls = [*live, *live[:10], *(LeaseRef(lease.job_id, "forged") for lease in live[10:])]
        outcomes = await asyncio.gather(
            *(store.complete(lease, lease.job_id.encode(), T0 + 1) for lease in calls),
            return_exceptions=True,
        )
        succeeded = [o for o in outcomes if not isinstance(o, BaseException)]
        assert sorted(job.id for job in succeeded) == sorted(lease.job_id for lease in live)
        assert all(job.result == job.id.encode() for job in succeeded)
        assert all(isinstance(o, LeaseLost) for o in outcomes if isinstance(o, BaseException))
        assert (await store.stats("default")).by_state[JobState.SUCCEEDED] == 30
    finally:
        await store.close()


async def test_bad_urls_and_unreachable_servers_are_clear_errors() -> None:
    postgres_url()  # the same gate as the other PostgreSQL tests
    with pytest.raises(ConfigError):
        PostgresStore("mysql://localhost/db")
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StorageError, match="cannot open"):
        await store.open()
    with pytest.raises(Unavailable):
        await store.claim(ClaimRequest("default", ("default",), "w", 1, 30, T0))


async def test_a_claim_takes_the_next_due_job_when_another_claimer_holds_the_best(
    database: str,
) -> None:
    # Due jobs the promoter has yet to move are locked after their claim order is known,
    # skipping rows another transaction holds, so those do not use up the claim's limit.
    store = PostgresStore(database)
    await store.open()
    try:
        due = [make_job(priority=priority, run_at=T0 + 1) for priority in range(3)]
        await store.enqueue(due, T0)
        holder = await asyncpg.connect(database)
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1 FROM shoal_jobs WHERE id = $1 FOR UPDATE", due[2].id)
                request = ClaimRequest("default", ("default",), "w1", 1, 30.0, T0 + 5)
                assert [job.id for job in await store.claim(request)] == [due[1].id]
        finally:
            await holder.close()
        request = ClaimRequest("default", ("default",), "w2", 5, 30.0, T0 + 5)
        assert [job.id for job in await store.claim(request)] == [due[2].id, due[0].id]
    finally:
        await store.close()


async def test_a_claim_skips_a_due_job_another_claimer_took_after_its_snapshot(
    database: str,
) -> None:
    # The slow claim's snapshot sees three due jobs; the best one is claimed and committed
    # before it locks them. It must take the next one, not count the lost one and take nothing.
    store = PostgresStore(database)
    await store.open()
    slow = await asyncpg.connect(database)
    try:
        due = [make_job(priority=priority, run_at=T0 + 1) for priority in range(3)]
        await store.enqueue(due, T0)
        window = f"shoal_earliest_scheduled({SCHEDULED_SCAN})"
        sleepy = f"shoal_earliest_scheduled({SCHEDULED_SCAN} + (SELECT 0 FROM pg_sleep(0.5)))"
        assert window in _CLAIM
        args = ("default", ["default"], T0 + 5, None, 1, "slow", 30.0)
        pending = asyncio.create_task(slow.fetch(_CLAIM.replace(window, sleepy), *args))
        await asyncio.sleep(0.2)  # its snapshot is taken; it sleeps before it locks
        fast = await store.claim(ClaimRequest("default", ("default",), "fast", 1, 30.0, T0 + 5))
        assert [job.id for job in fast] == [due[2].id]
        assert [row["id"] for row in await pending] == [due[1].id]
    finally:
        await slow.close()
        await store.close()
