"""`Session` without sockets: commands in, replies and pushed dispatch lines out."""

from __future__ import annotations

import asyncio
import json

import pytest

from shoal.core.access import AccessService
from shoal.core.errors import StorageError
from shoal.core.model import Job
from shoal.core.service import QueueService
from shoal.protocols.tcp._hub import Hub, TcpSettings
from shoal.protocols.tcp.commands import Command
from shoal.protocols.tcp.replies import OK, WELCOME, ErrorReply, OkId
from shoal.protocols.tcp.session import Session
from shoal.scheduler import SchedulerApi, ScheduleService
from shoal.stores.memory import MemoryStore


async def test_a_session_answers_and_pushes_after_its_reply() -> None:
    store = MemoryStore()
    await store.open()
    service = QueueService(store)
    hub = Hub(
        service,
        AccessService(MemoryStore(), enabled=False),
        SchedulerApi(ScheduleService(service)),
        TcpSettings(delay_policy="IGNORE"),
    )
    written: list[bytes] = []
    session = Session(hub, "127.0.0.1:1", written.append)
    try:
        assert await session.execute(Command("PUBLISH", ("q", "t", "p"))) == [
            ErrorReply("not-logged")
        ]
        assert await session.execute(Command("AUTH", ("me", "x"))) == [WELCOME]
        assert await session.execute(Command("USE_GROUP", ("default",))) == [OK]
        (published,) = await session.execute(Command("PUBLISH", ("q", "t", "p")))
        assert isinstance(published, OkId)

        await session.respond([Command("SUBSCRIBE", ("q",))])
        async with asyncio.timeout(2):
            while len(written) < 2:
                await asyncio.sleep(0.005)
        reply, line = written
        assert reply == b"OK\n"  # the reply first, then the job it made available
        job = json.loads(line)["Job"]
        assert job["ID"] == published.value and job["State"] == "pending"
        assert session.worker.status == "busy"

        await session.respond([Command("UPDATE_JOB", (job["ID"], "errored"))])
        async with asyncio.timeout(2):
            while len(written) < 3:
                await asyncio.sleep(0.005)
        data = written[2]
        assert data.startswith(b"OK\n")  # IGNORE: the job comes back, after the reply
        if data == b"OK\n":
            async with asyncio.timeout(2):
                while len(written) < 4:
                    await asyncio.sleep(0.005)
            data += written[3]
        again = json.loads(data.split(b"\n")[1])["Job"]
        assert (again["ID"], again["State"], again["Attempts"]) == (job["ID"], "errored", 1)
        await session.close()  # the connection is gone: the job is released, the worker left
        assert await service.list_workers() == []
        assert (await service.get("default", job["ID"])).worker_id is None
    finally:
        await session.close()
        await hub.close()
        await store.close()


def test_every_command_of_the_table_has_a_handler() -> None:
    from shoal.protocols.tcp.commands import COMMANDS
    from shoal.protocols.tcp.session import _HANDLERS

    assert set(_HANDLERS) == set(COMMANDS)


async def test_a_worker_whose_release_fails_still_leaves_the_hub(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(QueueService):
        async def worker_gone(
            self, worker_id: str, reason: str, namespace: str | None = None
        ) -> list[Job]:
            raise StorageError("the store is down")

    store = MemoryStore()
    await store.open()
    service = Failing(store)
    hub = Hub(
        service,
        AccessService(MemoryStore(), enabled=False),
        SchedulerApi(ScheduleService(service)),
        TcpSettings(),
    )
    try:
        for number in range(5):
            session = Session(hub, f"127.0.0.1:{number}", lambda data: None)
            await session.execute(Command("AUTH", ("me", "x")))
            await session.execute(Command("USE_GROUP", ("default",)))
            assert await session.execute(Command("SUBSCRIBE", ("q",))) == [OK]
            await session.close()
        assert hub.links == {}
        assert "releasing a TCP worker's jobs failed" in caplog.text
    finally:
        await hub.close()
        await store.close()
