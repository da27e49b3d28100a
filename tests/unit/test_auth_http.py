"""The HTTP surface's authentication in process: sessions end on time (a ManualClock), the
CSRF token guards cookie changes, logout ends a session, and failed logins are slowed per peer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest

from shoal.core.access import AccessService
from shoal.core.auth import ANONYMOUS, Role
from shoal.core.clock import ManualClock
from shoal.core.identity import IdentityStore
from shoal.core.service import QueueService
from shoal.protocols.http import HttpSettings, create_app
from shoal.stores.memory import MemoryStore

PASSWORD = "a-long-enough-password"


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, AccessService, ManualClock]]:
    clock = ManualClock()
    store = MemoryStore()
    service = QueueService(store, clock=clock)
    access = AccessService(cast(IdentityStore, store), enabled=True, clock=clock)
    await access.add_user(ANONYMOUS, "ann", PASSWORD, {"default": frozenset({Role.ADMIN})})
    app = create_app(service, settings=HttpSettings(session_ttl=60.0), access=access)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            yield client, access, clock


def _csrf(page: httpx.Response) -> str:
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


async def test_a_session_works_with_its_csrf_token_until_it_ends(
    setup: tuple[httpx.AsyncClient, AccessService, ManualClock],
) -> None:
    client, _, clock = setup
    signed_in = await client.post("/login", json={"name": "ann", "password": PASSWORD})
    assert signed_in.status_code == 200 and PASSWORD not in signed_in.text
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = await client.get("/")
    assert page.status_code == 200 and 'id="logout"' in page.text
    csrf = _csrf(page)
    assert len(csrf) > 20
    assert (await client.post("/api/v1/queues/q/pause")).status_code == 403  # no CSRF token
    wrong = await client.post("/api/v1/queues/q/pause", headers={"x-csrf-token": csrf + "x"})
    assert wrong.status_code == 403
    ok = await client.post("/api/v1/queues/q/pause", headers={"x-csrf-token": csrf})
    assert ok.status_code == 200
    assert (await client.get("/api/v1/jobs")).status_code == 200  # reads need no token
    clock.advance(61)
    assert (await client.get("/api/v1/jobs")).status_code == 401
    assert (await client.get("/")).status_code == 303


async def test_logout_ends_the_session(
    setup: tuple[httpx.AsyncClient, AccessService, ManualClock],
) -> None:
    client, _, _ = setup
    await client.post("/login", json={"name": "ann", "password": PASSWORD})
    csrf = _csrf(await client.get("/"))
    session = client.cookies.get("shoal_session")
    assert (await client.post("/logout")).status_code == 403  # a forged logout does nothing
    assert (await client.post("/logout", headers={"x-csrf-token": csrf})).status_code == 200
    client.cookies.set("shoal_session", session or "")
    assert (await client.get("/api/v1/jobs")).status_code == 401


async def test_failed_logins_are_slowed_for_the_peer(
    setup: tuple[httpx.AsyncClient, AccessService, ManualClock],
) -> None:
    client, access, _ = setup
    for attempt in range(3):
        wrong = await client.post("/login", json={"name": "ann", "password": f"nope{attempt}"})
        assert wrong.status_code == 401
    assert access.throttle.delay("peer:127.0.0.1") > 0 and access.throttle.delay("user:ann") > 0
    basic = httpx.BasicAuth("ann", PASSWORD)
    assert (await client.get("/api/v1/me", auth=basic)).json()["name"] == "ann"
    assert access.throttle.delay("peer:127.0.0.1") == 0  # a success clears it


async def test_a_page_of_a_namespace_the_user_cannot_read_is_refused(
    setup: tuple[httpx.AsyncClient, AccessService, ManualClock],
) -> None:
    client, _, _ = setup
    await client.post("/login", json={"name": "ann", "password": PASSWORD})
    assert (await client.get("/", params={"namespace": "default"})).status_code == 200
    assert (await client.get("/", params={"namespace": "elsewhere"})).status_code == 403
