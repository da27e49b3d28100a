"""The jobs routes of the HTTP API, over a real service on the memory store."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from shoal.core.model import LeaseRef
from shoal.core.service import ClaimInput, QueueService, ServiceSettings
from shoal.core.validation import Limits
from shoal.protocols.http import create_app
from shoal.stores.memory import MemoryStore


@pytest.fixture
def service() -> QueueService:
    return QueueService(MemoryStore())


@pytest.fixture
async def client(service: QueueService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            yield client


def error_of(response: httpx.Response) -> tuple[int, str, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["field"]


async def enqueue(client: httpx.AsyncClient, **body: object) -> dict:  # type: ignore[type-arg]
    response = await client.post("/api/v1/jobs", json={"task": "t", **body})
    assert response.status_code == 201, response.text
    return response.json()["job"]  # type: ignore[no-any-return]


async def test_enqueue_a_json_payload_and_get_it_back(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/jobs",
        json={"task": "mail.send", "queue": "mail", "payload": {"to": "ann"}, "tags": ["a"]},
    )
    assert response.status_code == 201
    created = response.json()
    assert created["created"] is True
    job = created["job"]
    assert (job["state"], job["queue"], job["task"]) == ("queued", "mail", "mail.send")
    assert job["payload"] == {"to": "ann"} and job["content_type"] == "application/json"
    assert job["lease_token"] is None and job["tags"] == ["a"]
    fetched = (await client.get(f"/api/v1/jobs/{job['id']}")).json()
    assert fetched["payload"] == {"to": "ann"} and fetched["id"] == job["id"]


async def test_enqueue_bytes_as_base64(client: httpx.AsyncClient) -> None:
    data = base64.b64encode(b"\x00\xffbinary").decode()
    job = await enqueue(client, payload_base64=data, content_type="application/x-thing")
    assert job["payload"] is None and job["payload_base64"] == data
    assert job["content_type"] == "application/x-thing"


async def test_a_delayed_job_is_scheduled(client: httpx.AsyncClient) -> None:
    job = await enqueue(client, delay=60, priority=5, max_attempts=7,
                        backoff={"kind": "fixed", "base": 2})  # fmt: skip
    assert job["state"] == "scheduled" and job["run_at"] >= job["created_at"] + 59
    assert (job["priority"], job["max_attempts"]) == (5, 7)
    assert job["backoff"].startswith("fixed:base=2")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "task"),
        ({"task": ""}, 422, "task"),
        ({"task": "t", "unknown": 1}, 422, "unknown"),
        ({"task": "t", "delay": -1}, 422, "delay"),
        ({"task": "t", "queue": "has space"}, 422, "queue"),
        ({"task": "t", "delay": 1, "run_at": 5}, 422, "delay"),
        ({"task": "t", "payload": 1, "payload_base64": "AA=="}, 422, "payload_base64"),
        ({"task": "t", "payload_base64": "not base64!"}, 422, "payload_base64"),
        ({"task": "t", "backoff": {"kind": "linear"}}, 422, "backoff.kind"),
    ],
)
async def test_bad_enqueues_name_their_field(
    client: httpx.AsyncClient,
    body: dict,
    status: int,
    field: str,  # type: ignore[type-arg]
) -> None:
    response = await client.post("/api/v1/jobs", json=body)
    assert error_of(response) == (status, "invalid_argument", field)
    listed = (await client.get("/api/v1/jobs")).json()
    assert listed["jobs"] == []


async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/jobs", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert error_of(response) == (400, "invalid_argument", "body")


async def test_an_idempotency_key_returns_the_existing_job(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/v1/jobs", json={"task": "t", "idempotency_key": "k1"})
    second = await client.post("/api/v1/jobs", json={"task": "t", "idempotency_key": "k1"})
    assert second.json()["created"] is False
    assert second.json()["job"]["id"] == first.json()["job"]["id"]


async def test_enqueue_many_stores_all_or_nothing(client: httpx.AsyncClient) -> None:
    jobs = [{"task": f"t{i}", "payload": i} for i in range(3)]
    response = await client.post("/api/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201
    assert [r["job"]["payload"] for r in response.json()["results"]] == [0, 1, 2]
    bad = await client.post(
        "/api/v1/jobs/batch", json={"jobs": [{"task": "x"}, {"task": "y", "delay": -1}]}
    )
    assert error_of(bad) == (422, "invalid_argument", "jobs.1.delay")
    empty = await client.post("/api/v1/jobs/batch", json={"jobs": []})
    assert error_of(empty) == (422, "invalid_argument", "jobs")
    assert len((await client.get("/api/v1/jobs")).json()["jobs"]) == 3


async def test_list_filters_and_keyset_pages(client: httpx.AsyncClient) -> None:
    ids = [
        (await enqueue(client, queue="a" if i % 2 else "b", tags=[f"n{i}"]))["id"] for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/jobs", params=params)).json()
        seen += [job["id"] for job in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == list(reversed(ids))
    in_a = (await client.get("/api/v1/jobs", params={"queue": "a"})).json()["jobs"]
    assert {job["id"] for job in in_a} == {ids[1], ids[3]}
    tagged = (await client.get("/api/v1/jobs", params={"tag": "n4"})).json()["jobs"]
    assert [job["id"] for job in tagged] == [ids[4]]
    queued = (await client.get("/api/v1/jobs", params={"state": "queued", "task": "t"})).json()
    assert len(queued["jobs"]) == 5
    other_ns = (await client.get("/api/v1/jobs", params={"namespace": "other"})).json()
    assert other_ns["jobs"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"state": "nope"}, "state"), ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"),
     ({"queue": "a b"}, "queue"), ({"namespace": ""}, "namespace")],
)  # fmt: skip
async def test_bad_list_filters_name_their_field(
    client: httpx.AsyncClient,
    params: dict,
    field: str,  # type: ignore[type-arg]
) -> None:
    response = await client.get("/api/v1/jobs", params=params)
    assert error_of(response) == (422, "invalid_argument", field)


async def test_unknown_jobs_are_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/jobs/nope"),
        ("GET", "/api/v1/jobs/nope/result"),
        ("GET", "/api/v1/jobs/nope/events"),
        ("POST", "/api/v1/jobs/nope/cancel"),
        ("POST", "/api/v1/jobs/nope/retry"),
        ("DELETE", "/api/v1/jobs/nope"),
    ]:
        response = await client.request(method, path)
        assert error_of(response)[:2] == (404, "not_found"), (method, path)


async def test_a_job_of_another_namespace_is_not_found(client: httpx.AsyncClient) -> None:
    job = await enqueue(client)
    response = await client.get(f"/api/v1/jobs/{job['id']}", params={"namespace": "other"})
    assert response.status_code == 404


async def test_cancel_retry_delete(client: httpx.AsyncClient, service: QueueService) -> None:
    job = await enqueue(client)
    path = f"/api/v1/jobs/{job['id']}"
    assert (await client.post(f"{path}/cancel")).json()["state"] == "cancelled"
    assert error_of(await client.post(f"{path}/cancel"))[:2] == (409, "conflict")
    assert (await client.post(f"{path}/retry")).json()["state"] == "queued"
    assert error_of(await client.post(f"{path}/retry"))[:2] == (409, "conflict")
    [running] = await service.claim(ClaimInput("w1", ("default",)))
    assert error_of(await client.delete(path))[:2] == (409, "conflict")
    requested = (await client.post(f"{path}/cancel")).json()
    assert requested["state"] == "running" and requested["cancel_requested"] is True
    await service.complete(LeaseRef(running.id, running.lease_token or ""))
    assert (await client.delete(path)).status_code == 204
    assert (await client.get(path)).status_code == 404


async def test_result_long_polls_until_the_job_finishes(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    job = await enqueue(client)
    now = (await client.get(f"/api/v1/jobs/{job['id']}/result")).json()
    assert now["state"] == "queued"
    waiting = asyncio.create_task(client.get(f"/api/v1/jobs/{job['id']}/result?wait=10"))
    [running] = await service.claim(ClaimInput("w1", ("default",)))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await service.complete(LeaseRef(running.id, running.lease_token or ""), b'{"ok":true}')
    done = (await asyncio.wait_for(waiting, 5)).json()
    assert done["state"] == "succeeded" and done["result"] == {"ok": True}
    bad = await client.get(f"/api/v1/jobs/{job['id']}/result?wait=-1")
    assert error_of(bad) == (422, "invalid_argument", "wait")


async def test_the_configured_limits_bound_pages_and_batches() -> None:
    # HTTP had its own bounds, the defaults (1000 jobs a page, 10,000 a batch): raising
    # limits.max_page or limits.max_batch changed nothing there
    limits = Limits(max_page=2000, max_batch=12_000)
    service = QueueService(MemoryStore(), ServiceSettings(limits=limits))
    app = create_app(service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            batch = {"jobs": [{"task": "t"} for _ in range(11_000)]}
            assert (await client.post("/api/v1/jobs/batch", json=batch)).status_code == 201
            page = await client.get("/api/v1/jobs", params={"limit": 1500})
            assert page.status_code == 200 and len(page.json()["jobs"]) == 1500
            over = await client.get("/api/v1/jobs", params={"limit": 2001})
            assert error_of(over) == (422, "invalid_argument", "limit")
