"""The LISTEN connection's loss: a NOTIFY sent while it is down is never delivered, so the
reconnect itself must wake the claimers that wait (the jobs they missed are in the table).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.stores.postgres import PostgresStore
from shoal.stores.postgres._base import Conn
from shoal.stores.postgres.testing import temporary_database
from tests.integration._postgres import postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with temporary_database(postgres_url()) as url:
        yield url


async def test_a_claimer_waiting_through_a_listen_reconnect_gets_the_job_missed_meanwhile(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer_store, worker_store = PostgresStore(database), PostgresStore(database)
    await producer_store.open()
    await worker_store.open()
    producer, worker = QueueService(producer_store), QueueService(worker_store)
    claim = asyncio.create_task(worker.claim(ClaimInput("w", ("q",), wait=30.0)))
    try:
        channel = worker_store._channel
        reconnect = asyncio.Event()
        connect = channel._connect

        async def held_connect() -> Conn:
            await reconnect.wait()
            return await connect()

        monkeypatch.setattr(channel, "_connect", held_connect)
        async with asyncio.timeout(5):
            while not worker.ready.waiting:
                await asyncio.sleep(0.01)
            listening = channel._conn
            assert listening is not None
            admin = await asyncpg.connect(database)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", listening.get_server_pid())
            finally:
                await admin.close()
            while not listening.is_closed():
                await asyncio.sleep(0.01)
            # Enqueued (and NOTIFY sent) while the worker's store is not listening.
            await producer.enqueue(EnqueueRequest(task="t", queue="q"))
            reconnect.set()
            while channel._conn is listening:
                await asyncio.sleep(0.01)
        # The claimer would wait out its 30 s: the notice was sent to nobody.
        async with asyncio.timeout(3):
            [job] = await claim
        assert job.queue == "q"
    finally:
        claim.cancel()
        await asyncio.gather(claim, return_exceptions=True)
        await producer_store.close()
        await worker_store.close()
