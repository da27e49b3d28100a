"""Schedules over the HTTP API: every route, its errors, and fires that reach the queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shoal.core.clock import ManualClock
from shoal.core.service import QueueService
from shoal.protocols.http import create_app
from shoal.scheduler import SchedulerApi, ScheduleService
from shoal.stores.memory import MemoryStore

BASE = "/api/v1/schedules"


@pytest.fixture
def service(manual_clock: ManualClock) -> QueueService:
    return QueueService(MemoryStore(), clock=manual_clock)


@pytest.fixture
async def client(service: QueueService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service, schedules=SchedulerApi(ScheduleService(service)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            yield client


def error_of(response: httpx.Response) -> tuple[int, str, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["field"]


async def test_create_get_list_put_and_delete(
    client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    now = manual_clock.now()
    created = await client.post(
        BASE, json={"id": "tick", "task": "ping", "every_ms": 250, "payload": {"n": 1}}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["every_ms"], body["payload"]) == ("interval", 250, {"n": 1})
    assert body["next_fire_at"] == pytest.approx(now + 0.25)
    assert (await client.get(f"{BASE}/tick")).json()["task"] == "ping"
    assert [s["id"] for s in (await client.get(BASE)).json()["schedules"]] == ["tick"]
    replaced = await client.put(f"{BASE}/tick", json={"task": "ping", "cron": "*/5 * * * * *"})
    assert replaced.status_code == 200 and replaced.json()["kind"] == "cron"
    upcoming = (await client.get(f"{BASE}/tick/upcoming", params={"count": 3})).json()["fires"]
    assert len(upcoming) == 3 and upcoming == sorted(upcoming)
    assert all(round(fire) % 5 == 0 for fire in upcoming)
    assert (await client.delete(f"{BASE}/tick")).status_code == 204
    assert error_of(await client.get(f"{BASE}/tick")) == (404, "not_found", None)


async def test_pause_resume_trigger_and_backfill(
    client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    start = manual_clock.now()
    await client.post(BASE, json={"id": "s", "task": "t", "every_ms": 1000})
    paused = (await client.post(f"{BASE}/s/pause")).json()
    assert paused["paused"] and paused["next_fire_at"] is None
    assert not (await client.post(f"{BASE}/s/resume")).json()["paused"]
    fired = await client.post(f"{BASE}/s/trigger")
    assert fired.status_code == 201 and fired.json()["job"]["schedule_id"] == "s"
    manual_clock.advance(10)
    backfill = await client.post(f"{BASE}/s/backfill", json={"start": start, "end": start + 5})
    assert backfill.status_code == 200, backfill.text
    results = backfill.json()["results"]
    assert len(results) == 5 and all(r["created"] for r in results)
    again = await client.post(f"{BASE}/s/backfill", json={"start": start, "end": start + 5})
    assert not any(r["created"] for r in again.json()["results"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "t", "cron": "not a cron"}, "cron"),
        ({"task": "t", "every_ms": 5}, "every_ms"),
        ({"task": "t", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"task": "t"}, "trigger"),
        ({"task": "t", "every_ms": 1000, "cron": "* * * * *"}, "trigger"),
    ],
)
async def test_bad_definitions_name_the_field_and_store_nothing(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post(BASE, json=body)
    assert error_of(response) == (422, "invalid_argument", field)
    assert (await client.get(BASE)).json()["schedules"] == []


async def test_conflicts_and_unknown_fields(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"id": "s", "task": "t", "every_ms": 1000})
    assert error_of(await client.post(BASE, json={"id": "s", "task": "t", "every_ms": 1000}))[
        :2
    ] == (
        409,
        "conflict",
    )
    unknown = await client.post(BASE, json={"task": "t", "every_ms": 1000, "evry": 1})
    assert unknown.status_code == 422
    future = await client.post(f"{BASE}/s/backfill", json={"start": 0, "end": 1e10})
    assert error_of(future) == (422, "invalid_argument", "end")


async def test_without_a_scheduler_the_routes_say_unavailable(service: QueueService) -> None:
    app = create_app(service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            response = await client.get(BASE)
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
