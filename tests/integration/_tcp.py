"""A TCP server started in the test's loop, on a random loopback port, and a line client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from shoal.core.access import AccessService
from shoal.core.auth import Role, hash_password
from shoal.core.identity import NamespaceInfo
from shoal.core.maintenance import Maintenance
from shoal.core.ports import Store
from shoal.core.service import QueueService, ServiceSettings
from shoal.protocols.tcp.server import TcpServer, TcpSettings, serve_tcp
from shoal.scheduler import SchedulerApi, SchedulerRunner, ScheduleService
from shoal.stores.memory import MemoryStore

#: Jobatator's test configuration (test/*.go): groups, users, IGNORE, test mode, job_timeout 2.
UPSTREAM_SETTINGS = TcpSettings(test_mode=True, delay_policy="IGNORE", job_timeout=2)
UPSTREAM_USERS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "user1": ("pass1", ("group1",)),
    "user2": ("pass1", ("group2", "group3")),
    "superuser": ("superuser", ("*",)),
}
UPSTREAM_GROUPS = ("group1", "group2", "group3")


@dataclass
class Harness:
    """What a test reaches: the service, the access service and the listening server."""

    service: QueueService
    access: AccessService
    server: TcpServer
    scheduler: SchedulerApi
    clients: list[Client] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def connect(self) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    async def login(self, user: str = "user1", password: str = "pass1", group: str = "") -> Client:
        client = await self.connect()
        assert await client.call(f"AUTH {user} {password}") == "Welcome!"
        if group:
            assert await client.call(f"USE_GROUP {group}") == "OK"
        return client


class Client:
    """Sends lines, reads reply lines (dispatch lines are ordinary lines here)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def line(self, timeout: float = 5.0) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        assert raw.endswith(b"\n"), f"connection closed after {raw!r}"
        return raw[:-1].decode()

    async def call(self, command: str, timeout: float = 5.0) -> str:
        await self.send(command + "\n")
        return await self.line(timeout)

    async def json(self, command: str) -> Any:
        return json.loads(await self.call(command))

    async def dispatched(self, timeout: float = 5.0) -> dict[str, object]:
        message = json.loads(await self.line(timeout))
        assert message["Debug"] == "Dispatch data"
        job: dict[str, object] = message["Job"]
        return job

    async def closed(self, timeout: float = 5.0) -> bool:
        return await asyncio.wait_for(self.reader.read(), timeout) == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


@cache
def _hashed(password: str) -> str:
    return hash_password(password)  # scrypt is slow on purpose: once per password per run


async def upstream_access(store: MemoryStore) -> AccessService:
    """Jobatator's test users and groups as shoal users (admins of their groups) and namespaces."""
    access = AccessService(store, enabled=True)
    for group in UPSTREAM_GROUPS:
        await store.create_namespace(NamespaceInfo(group, 0.0))
    for name, (password, groups) in UPSTREAM_USERS.items():
        grants = {group: frozenset({Role.ADMIN}) for group in groups}
        await access.declare_user(name, _hashed(password), grants)
    return access


@asynccontextmanager
async def running(
    settings: TcpSettings = UPSTREAM_SETTINGS,
    *,
    store: Store | None = None,
    access: AccessService | None = None,
    service_settings: ServiceSettings | None = None,
    scheduler: bool = False,
) -> AsyncIterator[Harness]:
    """A server over `store` (a fresh memory store by default) with Jobatator's test users."""
    memory = MemoryStore()
    store = store or memory
    await store.open()
    service = QueueService(store, service_settings)
    if access is None:
        access = await upstream_access(memory)
    api = SchedulerApi(ScheduleService(service))
    # The runner fires allow schedules ahead; their jobs fall due later, and the promoter (as in
    # the server and local mode) is what wakes a worker that did not take them ahead.
    runner = SchedulerRunner(service) if scheduler else None
    maintenance = Maintenance(service) if scheduler else None
    runner_task = asyncio.create_task(runner.run()) if runner else None
    duties = asyncio.create_task(maintenance.run()) if maintenance else None
    server = await serve_tcp(service, access, api, "127.0.0.1", 0, settings)
    harness = Harness(service, access, server, api)
    try:
        yield harness
    finally:
        for client in harness.clients:
            await client.close()
        await server.close()
        if runner is not None and runner_task is not None:
            runner.stop()
            await runner_task
        if maintenance is not None and duties is not None:
            maintenance.stop()
            await duties
        await store.close()
