"""Without authentication the HTTP surface answers only requests addressed to this machine: a
page on another domain that resolves to 127.0.0.1 (DNS rebinding) is same-origin for the
browser, and drove the API and the Jobatator gateway as it pleased.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shoal.core.access import AccessService
from shoal.core.service import QueueService
from shoal.protocols.http import create_app
from shoal.protocols.http._hosts import is_local_host
from shoal.stores.memory import MemoryStore


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("localhost", True),
        ("localhost:8080", True),
        ("app.localhost:8080", True),
        ("testserver", True),
        ("10.1.2.3", True),  # an address: not a name another machine's DNS can rebind
        ("attacker.example:8080", False),
        ("127.0.0.1.nip.io", False),
        ("Attacker.Example.", False),
    ],
)
def test_which_hosts_address_this_machine(host: str, local: bool) -> None:
    assert is_local_host(host) is local


async def _client(enabled: bool) -> AsyncIterator[httpx.AsyncClient]:
    service = QueueService(MemoryStore())
    access = AccessService(MemoryStore(), enabled=enabled)
    app = create_app(service, access=access)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


@pytest.fixture
async def open_client() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(enabled=False):
        yield client


async def test_a_rebound_page_is_refused_and_changes_nothing(
    open_client: httpx.AsyncClient,
) -> None:
    rebound = {"host": "attacker.example:8080", "origin": "http://attacker.example:8080"}
    answer = await open_client.post("/api/v1/jobs", json={"task": "t"}, headers=rebound)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    assert (await open_client.get("/api/v1/jobs")).json()["jobs"] == []
    assert (await open_client.post("/api/v1/jobs", json={"task": "t"})).status_code == 201


async def test_with_authentication_any_host_is_served() -> None:
    async for client in _client(enabled=True):
        answer = await client.get("/healthz", headers={"host": "shoal.example.com"})
        assert answer.status_code == 200  # behind a proxy, by its public name
